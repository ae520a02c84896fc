//! Contacts in and out as CSV: importing a file whose columns the person mapped (each row checked,
//! the bad ones reported by line, existing contacts updated rather than duplicated), and exporting
//! the list as filtered on the Contacts page, in the same columns an import reads.

use std::collections::HashMap;

use balas_domain::{
    AppError, Attribute, ContactFilter, Email, IMPORT_MAX_BYTES, IMPORT_MAX_ROWS, ImportColumn, ImportField,
    ImportMode, ImportReport, ImportUpdate, Issue, LabelId, PhoneNumber, RejectedRow, parse_yes_no,
};
use balas_storage::{AttributeWrite, ImportContact};
use tokio::sync::mpsc;

use crate::accounts::Caller;
use crate::{AppState, from_store, now};

/// The columns an export writes (and an import recognises by name).
pub const EXPORT_HEADER: [&str; 7] = ["phone", "name", "email", "labels", "opted_out", "created_at", "last_message_at"];

/// Reads a mapping given as one field name (or nothing) per column, comma-separated:
/// `phone,name,,labels` maps column 1 to the phone, 2 to the name, skips 3, and so on.
/// A custom attribute is written `attr:KEY`.
pub fn parse_mapping(raw: &str) -> Result<Vec<Option<ImportColumn>>, String> {
    let mut seen = Vec::new();
    let mut columns = Vec::new();
    for part in raw.split(',') {
        let part = part.trim();
        if part.is_empty() {
            columns.push(None);
            continue;
        }
        let column = ImportColumn::parse(part).ok_or_else(|| format!("“{part}” is not a field contacts have"))?;
        if seen.contains(&column) {
            return Err(format!("two columns are mapped to {}", column.token()));
        }
        seen.push(column.clone());
        columns.push(Some(column));
    }
    if !seen.contains(&ImportColumn::Field(ImportField::Phone)) {
        return Err("no column is mapped to the phone number, which every contact needs".into());
    }
    Ok(columns)
}

fn refused(reason: impl Into<String>) -> ImportReport {
    ImportReport { nothing_imported: true, refused: Some(reason.into()), ..ImportReport::default() }
}

/// Why an attribute's value was refused, for the import report.
fn attribute_reason(definition: &Attribute, raw: &str, issue: Issue) -> String {
    let key = definition.key.as_str();
    match issue {
        Issue::InvalidNumber => format!("{key}: “{raw}” is not a number (write 12 or 12.5, no thousands separators)"),
        Issue::InvalidDate => format!("{key}: “{raw}” is not a date (write YYYY-MM-DD or DD/MM/YYYY)"),
        Issue::InvalidYesNo => format!("{key}: must be yes or no, not “{raw}”"),
        Issue::NotAllowed => format!("{key}: “{raw}” is not one of {}", definition.options.join(", ")),
        Issue::TooLong { max } => format!("{key}: longer than {max} characters"),
        Issue::ControlCharacters => format!("{key}: has control characters"),
        other => format!("{key}: {other:?}"),
    }
}

/// A mapping's columns resolved against the workspace's attributes.
struct Columns<'a> {
    mapping: &'a [Option<ImportColumn>],
    attributes: Vec<(usize, &'a Attribute)>,
}

impl<'a> Columns<'a> {
    fn new(mapping: &'a [Option<ImportColumn>], definitions: &'a [Attribute]) -> Result<Self, String> {
        let mut attributes = Vec::new();
        for (i, column) in mapping.iter().enumerate() {
            if let Some(ImportColumn::Attribute(key)) = column {
                let definition = definitions
                    .iter()
                    .find(|d| &d.key == key)
                    .ok_or_else(|| format!("this workspace has no attribute “{key}”: add it in Settings first"))?;
                attributes.push((i, definition));
            }
        }
        Ok(Self { mapping, attributes })
    }
}

/// One row as a contact, or why not.
fn read_row(
    record: &csv::StringRecord,
    columns: &Columns<'_>,
    labels: &HashMap<String, LabelId>,
) -> Result<ImportContact, String> {
    let cell = |field: ImportField| {
        let wanted = Some(ImportColumn::Field(field));
        columns.mapping.iter().position(|f| *f == wanted).and_then(|i| record.get(i)).map(str::trim).unwrap_or("")
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
    let opted_out = match raw_opt {
        "" => false,
        raw => parse_yes_no(raw).ok_or_else(|| format!("opted_out must be yes or no, not “{raw_opt}”"))?,
    };
    let mut attributes = Vec::new();
    for (i, definition) in &columns.attributes {
        let raw = record.get(*i).unwrap_or("").trim();
        let value = definition.value(raw).map_err(|issue| attribute_reason(definition, raw, issue))?;
        if value.is_some() {
            attributes.push(AttributeWrite::of(definition, value));
        }
    }
    Ok(ImportContact { phone, name, email, labels: ids, opted_out, attributes })
}

/// Imports a CSV file (UTF-8, a header line, then one contact per line) into the caller's
/// workspace, telling `progress` how far it got. Rows are checked first; with
/// [`ImportMode::AllOrNothing`] one bad row stops everything. The writes are one transaction:
/// a failure part-way leaves the contacts as they were.
pub async fn import_contacts(
    state: &AppState,
    caller: &Caller,
    file: &[u8],
    mapping: &[Option<ImportColumn>],
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
    let definitions = state.store.attributes(workspace).await.map_err(from_store)?;
    let columns = match Columns::new(mapping, &definitions) {
        Ok(columns) => columns,
        Err(reason) => return Ok(refused(reason)),
    };
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
                match read_row(&record, &columns, &labels) {
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
    let workspace = caller.me.workspace_id;
    let filter = &crate::attributes::checked_filter(state, workspace, filter).await?;
    let definitions = state.store.attributes(workspace).await.map_err(from_store)?;
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
    let header = EXPORT_HEADER.iter().map(|h| (*h).to_owned()).chain(definitions.iter().map(|d| d.key.to_string()));
    write(&mut out, &header.collect::<Vec<_>>())?;
    const PAGE: u32 = 2_000;
    for page in 0.. {
        let (contacts, _) = state.store.contacts(workspace, filter, page, PAGE, now()).await.map_err(from_store)?;
        for c in &contacts {
            let labels: Vec<&str> = c.labels.iter().filter_map(|l| names.get(l).map(String::as_str)).collect();
            let fields = [
                c.phone.to_string(),
                c.name.clone().unwrap_or_default(),
                c.email.clone().unwrap_or_default(),
                labels.join(";"),
                if c.opted_out() { "yes" } else { "no" }.to_owned(),
                c.created_at.utc_minute(),
                c.last_message_at.map(|t| t.utc_minute()).unwrap_or_default(),
            ];
            let values = definitions.iter().map(|d| c.attributes.get(d.key.as_str()).cloned().unwrap_or_default());
            write(&mut out, &fields.into_iter().chain(values).collect::<Vec<_>>())?;
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
        let field = |f| Some(ImportColumn::Field(f));
        assert_eq!(
            parse_mapping("phone,name,,labels,attr:city").unwrap(),
            [
                field(ImportField::Phone),
                field(ImportField::Name),
                None,
                field(ImportField::Labels),
                Some(ImportColumn::Attribute(balas_domain::AttributeKey::parse("city").unwrap()))
            ]
        );
        assert!(parse_mapping("phone,attr:City").unwrap_err().contains("attr:City"));
        assert!(parse_mapping("name,email").unwrap_err().contains("phone"));
        assert!(parse_mapping("phone,phone").unwrap_err().contains("two columns"));
        assert!(parse_mapping("phone,shoe size").unwrap_err().contains("shoe size"));
    }

    #[test]
    fn rows_are_checked_with_a_reason_for_each_problem() {
        let labels = HashMap::from([("vip".to_owned(), LabelId(3))]);
        let mapping = parse_mapping("name,phone,email,labels,opted_out,attr:birthday").unwrap();
        let birthday = Attribute {
            id: balas_domain::AttributeId(9),
            key: balas_domain::AttributeKey::parse("birthday").unwrap(),
            name: balas_domain::LabelName::parse("Birthday").unwrap(),
            kind: balas_domain::AttributeKind::Date,
            options: vec![],
        };
        let definitions = [birthday];
        assert!(Columns::new(&mapping, &[]).err().unwrap().contains("no attribute “birthday”"));
        let columns = Columns::new(&mapping, &definitions).unwrap();
        let row = |cells: &[&str]| read_row(&csv::StringRecord::from(cells.to_vec()), &columns, &labels);
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
        assert!(row(&["Sari", "+6281234567890", "", "", "", "31/02/1990"]).unwrap_err().contains("birthday: “31/02"));
        let dated = row(&["Sari", "+6281234567890", "", "", "", "7/3/1990"]).unwrap();
        assert_eq!(dated.attributes[0].value.as_deref(), Some("1990-03-07"));
        // A short row (fewer cells than columns) is read as far as it goes.
        assert_eq!(row(&["Budi", "+6281234567891"]).unwrap().name.as_deref(), Some("Budi"));
    }
}
