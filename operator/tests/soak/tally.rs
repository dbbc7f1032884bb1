//! The soak's counts, per scenario, and the table printed at the end.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// What the runs of one scenario measured.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Row {
    pub runs: u64,
    pub faults: u64,
    pub backups_taken: u64,
    pub backups_available: u64,
    pub restores_verified: u64,
    pub keys_compared: u64,
    pub mismatches: u64,
    pub writes_lost: u64,
    pub corrupt_accepted: u64,
    pub orphaned_uploads: u64,
    pub leftovers: u64,
    pub stuck: u64,
    /// Runs the harness could not finish (a step timed out or failed): not a verdict on the
    /// product, but a run that measured less than it should.
    pub incomplete: u64,
}

impl Row {
    pub fn add(&mut self, other: &Row) {
        self.runs += other.runs;
        self.faults += other.faults;
        self.backups_taken += other.backups_taken;
        self.backups_available += other.backups_available;
        self.restores_verified += other.restores_verified;
        self.keys_compared += other.keys_compared;
        self.mismatches += other.mismatches;
        self.writes_lost += other.writes_lost;
        self.corrupt_accepted += other.corrupt_accepted;
        self.orphaned_uploads += other.orphaned_uploads;
        self.leftovers += other.leftovers;
        self.stuck += other.stuck;
        self.incomplete += other.incomplete;
    }

    /// Whether a loss column is not zero.
    pub fn lost_something(&self) -> bool {
        self.mismatches + self.writes_lost + self.corrupt_accepted + self.orphaned_uploads + self.leftovers + self.stuck
            > 0
    }
}

/// The rows in the order the scenarios ran, with notes for the findings.
#[derive(Debug, Default)]
pub struct Tally {
    rows: Vec<(String, Row)>,
    pub notes: BTreeMap<String, Vec<String>>,
}

impl Tally {
    pub fn row(&mut self, scenario: &str) -> &mut Row {
        if let Some(index) = self.rows.iter().position(|(name, _)| name == scenario) {
            return &mut self.rows[index].1;
        }
        self.rows.push((scenario.to_owned(), Row::default()));
        let last = self.rows.len() - 1;
        &mut self.rows[last].1
    }

    pub fn note(&mut self, scenario: &str, note: String) {
        let notes = self.notes.entry(scenario.to_owned()).or_default();
        if !notes.contains(&note) {
            notes.push(note);
        }
    }

    pub fn total(&self) -> Row {
        let mut total = Row::default();
        for (_, row) in &self.rows {
            total.add(row);
        }
        total
    }

    /// The table, as Markdown.
    pub fn markdown(&self) -> String {
        const HEADER: [&str; 14] = [
            "scenario",
            "runs",
            "faults injected",
            "backups taken",
            "backups available",
            "restores verified",
            "keys compared",
            "mismatches",
            "acknowledged writes lost",
            "corrupt snapshots accepted",
            "orphaned multipart uploads",
            "objects left by failed backups",
            "backups stuck",
            "runs incomplete",
        ];
        let mut table = format!("| {} |\n|{}\n", HEADER.join(" | "), "---|".repeat(HEADER.len()));
        let total = self.total();
        for (name, row) in self.rows.iter().map(|(name, row)| (name.as_str(), row)).chain([("**total**", &total)]) {
            let _ = writeln!(
                table,
                "| {name} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                row.runs,
                row.faults,
                row.backups_taken,
                row.backups_available,
                row.restores_verified,
                row.keys_compared,
                row.mismatches,
                row.writes_lost,
                row.corrupt_accepted,
                row.orphaned_uploads,
                row.leftovers,
                row.stuck,
                row.incomplete
            );
        }
        table
    }

    /// The notes, as a Markdown list.
    pub fn notes_markdown(&self) -> String {
        let mut text = String::new();
        for (scenario, notes) in &self.notes {
            for note in notes {
                let _ = writeln!(text, "- {scenario}: {note}");
            }
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_has_a_row_per_scenario_in_running_order_and_a_total() {
        let mut tally = Tally::default();
        tally.row("steady").runs += 2;
        tally.row("node-kill").runs += 1;
        tally.row("node-kill").orphaned_uploads += 1;
        let table = tally.markdown();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 5, "{table}");
        assert!(lines[2].starts_with("| steady | 2 |"));
        assert!(lines[3].starts_with("| node-kill | 1 |"));
        assert!(lines[4].starts_with("| **total** | 3 |"));
        assert!(tally.total().lost_something());
    }
}
