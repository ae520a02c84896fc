//! Contacts in and out as CSV: importing a file whose columns the person mapped (each row checked,
//! the bad ones reported by line, existing contacts updated rather than duplicated), and exporting
//! the list as filtered on the Contacts page, in the same columns an import reads.

use std::collections::HashMap;

use balas_domain::{
    AppError, ContactFilter, Email, IMPORT_MAX_BYTES, IMPORT_MAX_ROWS, ImportField, ImportMode, ImportReport,
    ImportUpdate, LabelId, PhoneNumber, RejectedRow,
};
use balas_storage::ImportContact;
use tokio::sync::mpsc;

use crate::accounts::Caller;
use crate::{AppState, from_store, now};

/// The columns an export writes (and an import recognises by name).
pub const EXPORT_HEADER: [&str; 7] = ["phone", "name", "email", "labels", "opted_out", "created_at", "last_message_at"];

/// Reads a mapping given as one field name (or nothing) per column, comma-separated:
/// `phone,name,,labels` maps column 1 to the phone, 2 to the name, skips 3, and so on.
pub fn parse_mapping(raw: &str) -> Result<Vec<Option<ImportField>>, String> {
    let mut seen = Vec::new();
    let mut columns = Vec::new();
    for part in raw.split(',') {
        let part = part.trim();
        if part.is_empty() {
            columns.push(None);
            continue;
        }
        let field = ImportField::parse(part).ok_or_else(|| format!("“{part}” is not a field contacts have"))?;
        if seen.contains(&field) {
            return Err(format!("two columns are mapped to {}", field.as_str()));
        }
        seen.push(field);
        columns.push(Some(field));
    }
    if !seen.contains(&ImportField::Phone) {
        return Err("no column is mapped to the phone number, which every contact needs".into());
    }
    Ok(columns)
}

fn refused(reason: impl Into<String>) -> ImportReport {
    ImportReport { nothing_imported: true, refused: Some(reason.into()), ..ImportReport::default() }
}

fn yes_no(raw: &str) -> Option<bool> {
    match raw.trim().to_lowercase().as_str() {
        "yes" | "y" | "true" | "1" | "ya" => Some(true),
        "no" | "n" | "false" | "0" | "tidak" | "" => Some(false),
        _ => None,
    }
}

/// One row as a contact, or why not.
fn read_row(
    record: &csv::StringRecord,
    mapping: &[Option<ImportField>],
    labels: &HashMap<String, LabelId>,
) -> Result<ImportContact, String> {
    let cell = |field: ImportField| {
        mapping.iter().position(|f| *f == Some(field)).and_then(|i| record.get(i)).map(str::trim).unwrap_or("")
    };
    let raw_phone = cell(ImportField::Phone);
    let phone = PhoneNumber::parse(raw_phone).map_err(|_| match raw_phone {
        "" => "no phone number".to_owned(),
        raw => format!("invalid phone number “{raw}”: write it with its country code, like +62 812 3456 7890"),
    })?;
    let name = match cell(ImportField::Name) {
        "" => None,
        name if name.chars().count() > 100 => return Err("the name is longer than 100 characters".into()),
        name if name.chars().any(char::is_control) => return Err("the name has control characters".into()),
        name => Some(name.to_owned()),
    };
    let email = match cell(ImportField::Email) {
        "" => None,
        raw => Some(Email::parse(raw).map_err(|_| format!("invalid email “{raw}”"))?.as_str().to_owned()),
    };
    let mut ids = Vec::new();
    for name in cell(ImportField::Labels).split([';', ',']).map(str::trim).filter(|n| !n.is_empty()) {
        let id = labels.get(&name.to_lowercase()).ok_or_else(|| format!("unknown label “{name}”"))?;
        if !ids.contains(id) {
            ids.push(*id);
        }
    }
    let raw_opt = cell(ImportField::OptedOut);
    let opted_out = yes_no(raw_opt).ok_or_else(|| format!("opted_out must be yes or no, not “{raw_opt}”"))?;
    Ok(ImportContact { phone, name, email, labels: ids, opted_out })
}

/// Imports a CSV file (UTF-8, a header line, then one contact per line) into the caller's
/// workspace, telling `progress` how far it got. Rows are checked first; with
/// [`ImportMode::AllOrNothing`] one bad row stops everything. The writes are one transaction:
/// a failure part-way leaves the contacts as they were.
pub async fn import_contacts(
    state: &AppState,
    caller: &Caller,
    file: &[u8],
    mapping: &[Option<ImportField>],
    mode: ImportMode,
    progress: &mpsc::Sender<ImportUpdate>,
) -> Result<ImportReport, AppError> {
    caller.require_active()?;
    if file.len() as u64 > IMPORT_MAX_BYTES {
        return Ok(refused(format!("the file is larger than {} MB", IMPORT_MAX_BYTES >> 20)));
    }
    let file = file.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(file);
    let Ok(text) = std::str::from_utf8(file) else {
        return Ok(refused("the file is not UTF-8 text: save it as “CSV UTF-8” and import it again"));
    };
    if text.contains('\0') {
        return Ok(refused("the file is not a CSV text file"));
    }
    let workspace = caller.me.workspace_id;
    let labels: HashMap<String, LabelId> = state
        .store
        .labels(workspace)
        .await
        .map_err(from_store)?
        .into_iter()
        .map(|l| (l.name.as_str().to_lowercase(), l.id))
        .collect();
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(text.as_bytes());
    let mut report = ImportReport::default();
    let mut rows: Vec<(u64, ImportContact)> = Vec::new();
    for record in reader.records() {
        report.rows += 1;
        if report.rows as usize > IMPORT_MAX_ROWS {
            return Ok(refused(format!("the file has more than {IMPORT_MAX_ROWS} rows: split it into smaller files")));
        }
        match record {
            Ok(record) => {
                let line = record.position().map_or(report.rows + 1, |p| p.line());
                match read_row(&record, mapping, &labels) {
                    Ok(contact) => rows.push((line, contact)),
                    Err(reason) => report.rejected.push(RejectedRow { line, reason }),
                }
            }
            Err(error) => {
                let line = error.position().map_or(report.rows + 1, |p| p.line());
                report.rejected.push(RejectedRow { line, reason: format!("the line is not valid CSV: {error}") });
            }
        }
    }
    // The same number twice: the later row wins, the earlier is reported.
    let mut last: HashMap<PhoneNumber, u64> = HashMap::new();
    for (line, contact) in &rows {
        last.insert(contact.phone.clone(), *line);
    }
    rows.retain(|(line, contact)| {
        let kept = last[&contact.phone];
        if kept != *line {
            report.rejected.push(RejectedRow {
                line: *line,
                reason: format!("the same number as line {kept}, which was imported instead"),
            });
        }
        kept == *line
    });
    report.rejected.sort_by_key(|r| r.line);
    if mode == ImportMode::AllOrNothing && !report.rejected.is_empty() {
        report.nothing_imported = true;
        return Ok(report);
    }
    let contacts: Vec<ImportContact> = rows.into_iter().map(|(_, c)| c).collect();
    let total = contacts.len() as u64;
    let _ = progress.try_send(ImportUpdate::Progress { done: 0, total });
    let tell = |done: u64| {
        let _ = progress.try_send(ImportUpdate::Progress { done, total });
    };
    let (created, updated) =
        state.store.import_contacts(workspace, &contacts, now(), &tell).await.map_err(from_store)?;
    report.created = created;
    report.updated = updated;
    report.nothing_imported = total == 0;
    Ok(report)
}

/// The caller's contacts that match `filter`, as CSV in [`EXPORT_HEADER`]'s columns.
pub async fn export_contacts(state: &AppState, caller: &Caller, filter: &ContactFilter) -> Result<String, AppError> {
    caller.require_active()?;
    filter.check().map_err(AppError::invalid)?;
    let workspace = caller.me.workspace_id;
    let names: HashMap<LabelId, String> = state
        .store
        .labels(workspace)
        .await
        .map_err(from_store)?
        .into_iter()
        .map(|l| (l.id, l.name.as_str().to_owned()))
        .collect();
    let mut out = csv::Writer::from_writer(Vec::new());
    let write = |out: &mut csv::Writer<Vec<u8>>, row: &[String]| out.write_record(row).map_err(crate::internal);
    write(&mut out, &EXPORT_HEADER.map(str::to_owned))?;
    const PAGE: u32 = 2_000;
    for page in 0.. {
        let (contacts, _) = state.store.contacts(workspace, filter, page, PAGE, now()).await.map_err(from_store)?;
        for c in &contacts {
            let labels: Vec<&str> = c.labels.iter().filter_map(|l| names.get(l).map(String::as_str)).collect();
            write(
                &mut out,
                &[
                    c.phone.to_string(),
                    c.name.clone().unwrap_or_default(),
                    c.email.clone().unwrap_or_default(),
                    labels.join(";"),
                    if c.opted_out() { "yes" } else { "no" }.to_owned(),
                    c.created_at.utc_minute(),
                    c.last_message_at.map(|t| t.utc_minute()).unwrap_or_default(),
                ],
            )?;
        }
        if contacts.len() < PAGE as usize {
            break;
        }
    }
    let bytes = out.into_inner().map_err(crate::internal)?;
    String::from_utf8(bytes).map_err(crate::internal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mappings_need_one_phone_and_no_field_twice() {
        assert_eq!(
            parse_mapping("phone,name,,labels").unwrap(),
            [Some(ImportField::Phone), Some(ImportField::Name), None, Some(ImportField::Labels)]
        );
        assert!(parse_mapping("name,email").unwrap_err().contains("phone"));
        assert!(parse_mapping("phone,phone").unwrap_err().contains("two columns"));
        assert!(parse_mapping("phone,shoe size").unwrap_err().contains("shoe size"));
    }

    #[test]
    fn rows_are_checked_with_a_reason_for_each_problem() {
        let labels = HashMap::from([("vip".to_owned(), LabelId(3))]);
        let mapping = parse_mapping("name,phone,email,labels,opted_out").unwrap();
        let row = |cells: &[&str]| read_row(&csv::StringRecord::from(cells.to_vec()), &mapping, &labels);
        let ok = row(&["Sari", "0062 812 3456 7890", "sari@example.com", "VIP; vip", "ya"]).unwrap();
        assert_eq!(
            (ok.phone.as_str(), ok.labels.as_slice(), ok.opted_out),
            ("+6281234567890", &[LabelId(3)][..], true)
        );
        assert!(row(&["Sari", "0812345678", "", "", ""]).unwrap_err().contains("invalid phone number"));
        assert!(row(&["Sari", "", "", "", ""]).unwrap_err().contains("no phone"));
        assert!(row(&["Sari", "+6281234567890", "nope", "", ""]).unwrap_err().contains("invalid email"));
        assert!(row(&["Sari", "+6281234567890", "", "Gold", ""]).unwrap_err().contains("unknown label “Gold”"));
        assert!(row(&["Sari", "+6281234567890", "", "", "maybe"]).unwrap_err().contains("yes or no"));
        // A short row (fewer cells than columns) is read as far as it goes.
        assert_eq!(row(&["Budi", "+6281234567891"]).unwrap().name.as_deref(), Some("Budi"));
    }
}
