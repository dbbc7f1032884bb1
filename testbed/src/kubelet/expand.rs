//! `$(VAR)` expansion as the kubelet does it for env values, command and args.
//!
//! The rules follow `k8s.io/kubernetes/third_party/forked/golang/expansion`:
//! `$(NAME)` is replaced by the value of `NAME` when it is defined and left as
//! written otherwise, `$$` is an escaped `$`, and any other `$` is literal.

/// Expands `$(NAME)` references in `input`, looking names up with `lookup`.
pub fn expand(input: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let mut output = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(position) = rest.find('$') {
        output.push_str(&rest[..position]);
        let after = &rest[position + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            output.push('$');
            rest = tail;
        } else if let Some(tail) = after.strip_prefix('(') {
            match tail.find(')') {
                Some(close) => {
                    let name = &tail[..close];
                    match lookup(name) {
                        Some(value) => output.push_str(&value),
                        None => {
                            output.push_str("$(");
                            output.push_str(name);
                            output.push(')');
                        }
                    }
                    rest = &tail[close + 1..];
                }
                None => {
                    // An unclosed reference is kept as written.
                    output.push_str("$(");
                    rest = tail;
                }
            }
        } else {
            output.push('$');
            rest = after;
        }
    }
    output.push_str(rest);
    output
}

#[cfg(test)]
mod tests {
    use super::expand;

    fn lookup(name: &str) -> Option<String> {
        match name {
            "POD_IP" => Some("127.0.1.7".to_owned()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn defined_reference_is_replaced_by_its_value() {
        assert_eq!(expand("--bind $(POD_IP)", lookup), "--bind 127.0.1.7");
        assert_eq!(expand("a$(EMPTY)b", lookup), "ab");
    }

    #[test]
    fn undefined_reference_is_left_as_written() {
        assert_eq!(expand("$(MISSING) x", lookup), "$(MISSING) x");
    }

    #[test]
    fn double_dollar_escapes_a_reference() {
        assert_eq!(expand("$$(POD_IP)", lookup), "$(POD_IP)");
        assert_eq!(expand("$$$(POD_IP)", lookup), "$127.0.1.7");
    }

    #[test]
    fn lone_dollar_and_shell_syntax_are_literal() {
        assert_eq!(expand("echo $POD_IP ${X} $", lookup), "echo $POD_IP ${X} $");
    }

    #[test]
    fn unclosed_reference_is_kept() {
        assert_eq!(expand("$(POD_IP", lookup), "$(POD_IP");
    }
}
