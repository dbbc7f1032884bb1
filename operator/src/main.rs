fn main() {
    eprintln!("ferrocache-operator: not implemented yet (API group {})", ferrocache_operator::API_GROUP);
    std::process::exit(2);
}
