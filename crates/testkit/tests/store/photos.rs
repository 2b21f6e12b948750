//! Photos stored with a step of a task's history: in the step's
//! transaction, all or nothing, never for a replayed or stale step.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use epigrid_domain::tasks::EventState;
use epigrid_store::{Store, TaskHistoryRecord, TaskPhotoRecord, TaskRecord, TaskWrite};
use epigrid_testkit::{Chain, area_task, now, task_step};
use uuid::Uuid;

fn task(chain: &Chain, at: DateTime<Utc>) -> TaskRecord {
    TaskRecord {
        stage_deadline: Some(at + TimeDelta::hours(4)),
        ..area_task(chain, "door_to_door_check", EventState::InProgress, at)
    }
}

fn step(t: &TaskRecord, transition: &str, key: Option<&str>) -> TaskHistoryRecord {
    TaskHistoryRecord {
        from_state: Some(EventState::InProgress),
        idempotency_key: key.map(str::to_owned),
        ..task_step(t, transition, None, t.updated_at)
    }
}

fn photo(step: &TaskHistoryRecord, content_type: &str, data: &[u8]) -> TaskPhotoRecord {
    TaskPhotoRecord {
        id: Uuid::now_v7(),
        task_id: step.task_id,
        history_id: step.id,
        community_id: step.community_id,
        content_type: content_type.into(),
        data: data.to_vec(),
        created_at: step.at,
    }
}

/// The task moved to `HandledReported`, one version on.
fn handled(t: &TaskRecord) -> TaskRecord {
    let mut next = t.clone();
    next.state = EventState::HandledReported;
    next.version += 1;
    next
}

epigrid_testkit::store_contract_tests! {
    async fn photos_are_stored_with_their_step_and_read_back(store: Arc<dyn Store>) {
        let chain = Chain::insert(&*store, "照片").await;
        let t = task(&chain, now());
        store.insert_task(&t, &step(&t, "report", None)).await.unwrap();
        let next = handled(&t);
        let s = step(&next, "report_handled", Some("photo-key"));
        // Every byte value, so nothing is mangled as text on either backend.
        let bytes: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
        let photos = [photo(&s, "image/jpeg", &bytes), photo(&s, "image/png", b"\x89PNG\r\n\x1a\n")];
        let outcome = store.apply_task_step_with_photos(&next, 1, &s, &photos).await.unwrap();
        assert_eq!(outcome, TaskWrite::Applied);
        assert_eq!(store.get_task(t.id).await.unwrap().unwrap().state, EventState::HandledReported);

        assert_eq!(store.get_task_photo(photos[0].id).await.unwrap(), Some(photos[0].clone()));
        assert_eq!(store.get_task_photo(Uuid::now_v7()).await.unwrap(), None);
        let listed = store.list_task_photos(t.id).await.unwrap();
        assert_eq!(listed, photos.iter().map(TaskPhotoRecord::meta).collect::<Vec<_>>());
        assert_eq!(listed[0].byte_size, 70_000);
        assert_eq!(listed[0].history_id, s.id);
        assert!(store.list_task_photos(Uuid::now_v7()).await.unwrap().is_empty());
    }

    async fn a_replayed_or_stale_step_keeps_no_photos(store: Arc<dyn Store>) {
        let chain = Chain::insert(&*store, "重放").await;
        let t = task(&chain, now());
        store.insert_task(&t, &step(&t, "report", None)).await.unwrap();
        let next = handled(&t);
        let first = step(&next, "report_handled", Some("same-key"));
        let one = [photo(&first, "image/webp", b"RIFF\0\0\0\0WEBPVP8 ")];
        assert_eq!(store.apply_task_step_with_photos(&next, 1, &first, &one).await.unwrap(), TaskWrite::Applied);

        // The same key again, with another photo: the first step, no new photo.
        let again = step(&handled(&next), "report_handled", Some("same-key"));
        let two = [photo(&again, "image/jpeg", b"\xff\xd8\xff\xe0")];
        let outcome = store.apply_task_step_with_photos(&handled(&next), 2, &again, &two).await.unwrap();
        assert_eq!(outcome, TaskWrite::Replayed(first.clone()));
        // A stale version: nothing at all.
        let stale = step(&handled(&next), "close", Some("other-key"));
        let three = [photo(&stale, "image/jpeg", b"\xff\xd8\xff\xe1")];
        let outcome = store.apply_task_step_with_photos(&handled(&next), 1, &stale, &three).await.unwrap();
        assert_eq!(outcome, TaskWrite::Stale);

        let listed = store.list_task_photos(t.id).await.unwrap();
        assert_eq!(listed.iter().map(|p| p.id).collect::<Vec<_>>(), [one[0].id]);
        assert_eq!(store.get_task_photo(two[0].id).await.unwrap(), None);
        assert_eq!(store.get_task_photo(three[0].id).await.unwrap(), None);
        let history = store.list_task_history(t.id).await.unwrap();
        assert_eq!(history.len(), 2, "report and one report_handled");
    }

    async fn a_photo_of_a_missing_step_is_refused_and_the_step_undone(store: Arc<dyn Store>) {
        let chain = Chain::insert(&*store, "缺失").await;
        let t = task(&chain, now());
        store.insert_task(&t, &step(&t, "report", None)).await.unwrap();
        let next = handled(&t);
        let s = step(&next, "report_handled", None);
        let mut orphan = photo(&s, "image/jpeg", b"\xff\xd8\xff");
        orphan.history_id = Uuid::now_v7();
        let result = store.apply_task_step_with_photos(&next, 1, &s, &[orphan]).await;
        assert!(result.is_err(), "{result:?}");
        let stored = store.get_task(t.id).await.unwrap().unwrap();
        assert_eq!((stored.state, stored.version), (EventState::InProgress, 1), "all or nothing");
        assert_eq!(store.list_task_history(t.id).await.unwrap().len(), 1);
    }
}
