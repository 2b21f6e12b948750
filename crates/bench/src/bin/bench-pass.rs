//! Mints a resident pass for the first household with members, for load
//! runs against the public report endpoint (identification is a one-off per
//! resident and is not what the throughput target measures).
//!
//! Usage: `bench-pass DATABASE_URL SECRET_KEY_HEX [COUNT]` → prints
//! `PASS HOUSEHOLD_ID RESIDENT_ID` on one line, for each of the first COUNT
//! households with members (default 1): a load from many households
//! (`loadgen --vars`).

use std::sync::Arc;

use epigrid_service::selfservice::ResidentPass;
use epigrid_service::{FieldCipher, SecretKey, Service, Settings};
use epigrid_store::{HouseholdQuery, ResidentQuery, Store};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args.next().ok_or("DATABASE_URL")?;
    let key = SecretKey::from_hex(&args.next().ok_or("SECRET_KEY_HEX")?)?;
    let store: Arc<dyn Store> = if url.starts_with("postgres") {
        Arc::new(epigrid_store_postgres::PostgresStore::open(&url).await?)
    } else {
        Arc::new(epigrid_store_sqlite::SqliteStore::open(&url).await?)
    };
    let count: usize = match args.next() {
        Some(count) => count.parse().map_err(|_| "COUNT: a number")?,
        None => 1,
    };
    let service = Service::new(store.clone(), FieldCipher::new(&key), Settings::default());
    let mut minted = 0;
    let mut after = None;
    while minted < count {
        let page =
            store.list_households(&HouseholdQuery { within: None, after, limit: 500 }).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        for household in page {
            let members = store
                .search_residents(&ResidentQuery {
                    household_id: Some(household.id),
                    limit: 50,
                    ..Default::default()
                })
                .await?;
            if let Some(first) = members.first() {
                let pass = service.issue_pass(&ResidentPass {
                    household_id: household.id,
                    path: household.path,
                    members: members.iter().map(|m| m.id).collect(),
                    expires_at: service.now() + epigrid_service::chrono::Duration::hours(6),
                });
                println!("{pass} {} {}", household.id, first.id);
                minted += 1;
                if minted == count {
                    break;
                }
            }
        }
    }
    if minted == 0 {
        return Err("no household with members".into());
    }
    Ok(())
}
