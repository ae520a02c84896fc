//! `contacts`: the CRM at 100,000 contacts with 20 labels, on SQLite and on PostgreSQL.
//!
//! For each database: imports 100,000 CSV rows through the same code the Contacts page's import
//! uses (parse, check every row, write in one transaction) and times it; then runs the Contacts
//! page's queries (search by name, by part of a number, a label, the opt-out filter, a label with
//! a search, sorting by name, a deep page, a list attribute equal to a value, a number attribute
//! at least a value), each `--rounds` times, through the backend function
//! the page calls (the page of 50 and the total count), and reports p50 and p99 per query and over
//! all. Goals (issue #6): p99 under 50 ms, the import under 30 s.
//!
//! Options: `--contacts N` (100000), `--rounds N` (100 per query).

use std::time::Instant;

use anyhow::{Context, Result};
use balas_backend::accounts::{self, RequestMeta};
use balas_backend::contacts_io::{import_contacts, parse_mapping};
use balas_backend::{crm, now};
use balas_domain::{
    AttributeFilter, AttributeId, AttributeKey, AttributeKind, AttributeOp, ContactFilter, ContactSort, ImportMode,
    LabelColor, LabelId, LabelName, OptOutFilter,
};
use serde_json::{Value, json};

use crate::setup::{ADMIN_EMAIL, ADMIN_PASSWORD, Bench};
use crate::{Args, percentile, report};

const FIRST: [&str; 12] =
    ["Sari", "Budi", "Citra", "Dewi", "Eko", "Fitri", "Gita", "Hadi", "Indah", "Joko", "Kartika", "Lestari"];
const TIERS: [&str; 4] = ["Gold", "Silver", "Bronze", ""];
const LAST: [&str; 8] = ["Wijaya", "Santoso", "Pratama", "Utami", "Saputra", "Lestari", "Hidayat", "Kusuma"];

/// A small deterministic generator (the same file every run).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

fn csv_file(contacts: usize, labels: &[String]) -> Vec<u8> {
    let mut random = Lcg(42);
    let mut out = String::from("phone,name,email,labels,opted_out,tier,spent\n");
    for n in 0..contacts {
        let first = FIRST[random.next() as usize % FIRST.len()];
        let last = LAST[random.next() as usize % LAST.len()];
        let email = if n % 3 == 0 { format!("{}.{n}@example.com", first.to_lowercase()) } else { String::new() };
        let tags: Vec<&str> =
            (0..random.next() % 3).map(|_| labels[random.next() as usize % labels.len()].as_str()).collect();
        let out_opted = if random.next().is_multiple_of(20) { "yes" } else { "no" };
        let tier = TIERS[random.next() as usize % TIERS.len()];
        let spent = random.next() % 1_000_000;
        out.push_str(&format!("+62812{n:08},{first} {last},{email},{},{out_opted},{tier},{spent}\n", tags.join(";")));
    }
    out.into_bytes()
}

fn attribute(attribute: AttributeId, op: AttributeOp, value: &str) -> ContactFilter {
    let wanted = AttributeFilter { attribute, op, value: value.to_owned() };
    ContactFilter { attribute: Some(wanted), ..ContactFilter::default() }
}

async fn measure(args: &Args, database: &str, url: Option<String>) -> Result<Vec<(String, Value)>> {
    let contacts = args.number("--contacts", 100_000)? as usize;
    let rounds = args.number("--rounds", 100)? as usize;
    let bench = Bench::start_on(url).await?;
    let state = &bench.state;
    let meta = RequestMeta { ip: "127.0.0.1".into(), user_agent: "bench".into() };
    let login =
        accounts::log_in(state, &meta, ADMIN_EMAIL, ADMIN_PASSWORD).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let caller = accounts::require_caller(state, Some(&login.token)).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let names: Vec<String> = (1..=20).map(|n| format!("Label {n:02}")).collect();
    let mut label_ids: Vec<LabelId> = Vec::new();
    for name in &names {
        let color = LabelColor::parse("blue")?;
        label_ids.push(state.store.create_label(bench.workspace, &LabelName::parse(name)?, &color, now()).await?);
    }
    let tiers: Vec<String> = TIERS.iter().filter(|t| !t.is_empty()).map(|t| t.to_string()).collect();
    let tier = AttributeKey::parse("tier")?;
    let tier = state
        .store
        .create_attribute(bench.workspace, &tier, &LabelName::parse("Tier")?, AttributeKind::OneOf, &tiers, now())
        .await?;
    let spent = AttributeKey::parse("spent")?;
    let spent = state
        .store
        .create_attribute(bench.workspace, &spent, &LabelName::parse("Spent")?, AttributeKind::Number, &[], now())
        .await?;
    let file = csv_file(contacts, &names);
    let mapping =
        parse_mapping("phone,name,email,labels,opted_out,attr:tier,attr:spent").map_err(anyhow::Error::msg)?;
    let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
    tokio::spawn(async move { while rx.recv().await.is_some() {} });
    println!("{database}: importing {contacts} rows ({:.1} MB)…", file.len() as f64 / 1e6);
    let started = Instant::now();
    let imported = import_contacts(state, &caller, &file, &mapping, ImportMode::ValidRows, &tx)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let import_seconds = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        imported.created == contacts as u64 && imported.rejected.is_empty(),
        "the import did not take every row: {imported:?}"
    );
    println!("{database}: imported in {import_seconds:.1} s; querying…");

    let queries: Vec<(&str, ContactFilter, u32)> = vec![
        ("search_name", ContactFilter { search: "kartika".into(), ..ContactFilter::default() }, 0),
        ("search_phone", ContactFilter { search: "0812 0004 5".into(), ..ContactFilter::default() }, 0),
        ("label", ContactFilter { label: Some(label_ids[7]), ..ContactFilter::default() }, 0),
        ("opted_out", ContactFilter { opt_out: OptOutFilter::OptedOut, ..ContactFilter::default() }, 0),
        (
            "label_and_search",
            ContactFilter { search: "sari".into(), label: Some(label_ids[3]), ..ContactFilter::default() },
            0,
        ),
        ("sort_name", ContactFilter { sort: ContactSort::Name, ..ContactFilter::default() }, 0),
        ("deep_page", ContactFilter::default(), 1_000),
        ("attribute_is", attribute(tier, AttributeOp::Is, "Gold"), 0),
        ("attribute_at_least", attribute(spent, AttributeOp::AtLeast, "990000"), 0),
    ];
    let mut all = Vec::new();
    let mut figures = vec![
        (format!("{database}_import_seconds"), json!((import_seconds * 10.0).round() / 10.0)),
        (format!("{database}_contacts"), json!(contacts)),
    ];
    for (name, filter, page) in &queries {
        let mut times = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            let started = Instant::now();
            let found = crm::contacts(state, &caller, filter, *page).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            times.push(started.elapsed().as_secs_f64() * 1000.0);
            std::hint::black_box(found);
        }
        times.sort_by(f64::total_cmp);
        let (p50, p99) = (percentile(&times, 50.0), percentile(&times, 99.0));
        figures.push((format!("{database}_{name}_p50_ms"), json!((p50 * 10.0).round() / 10.0)));
        figures.push((format!("{database}_{name}_p99_ms"), json!((p99 * 10.0).round() / 10.0)));
        all.extend(times);
    }
    all.sort_by(f64::total_cmp);
    figures.push((format!("{database}_all_p50_ms"), json!((percentile(&all, 50.0) * 10.0).round() / 10.0)));
    figures.push((format!("{database}_all_p99_ms"), json!((percentile(&all, 99.0) * 10.0).round() / 10.0)));
    Ok(figures)
}

pub async fn run(args: &Args) -> Result<()> {
    let postgres = std::env::var("BALAS_BENCH_POSTGRES_URL")
        .context("BALAS_BENCH_POSTGRES_URL is not set: run benchmarks with `cargo xtask bench contacts`")?;
    let mut figures = Vec::new();
    for (database, url) in [("sqlite", None), ("postgres", Some(postgres))] {
        let measured = measure(args, database, url).await?;
        // Each database's figures as soon as they are in.
        for (key, value) in &measured {
            println!("  {key:<40} {value}");
        }
        figures.extend(measured);
    }
    let borrowed: Vec<(&str, Value)> = figures.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    report(args, "contacts: 100,000 contacts, 20 labels (goals: p99 < 50 ms, import < 30 s)", &borrowed);
    Ok(())
}
