//! Photos attached to a step of a task's history (a worker's proof that a
//! door was knocked on or a delivery made). The service checks type and
//! size before a photo reaches the store; the store keeps the bytes in the
//! database, beside the step, so a backup holds them and no file system
//! path needs sharing between instances.

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// One stored photo with its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskPhotoRecord {
    pub id: Uuid,
    pub task_id: Uuid,
    /// The history step the photo was taken for.
    pub history_id: Uuid,
    pub community_id: Uuid,
    /// `image/jpeg`, `image/png` or `image/webp`, as the service sniffed it.
    pub content_type: String,
    pub data: Vec<u8>,
    pub created_at: DateTime<Utc>,
}

/// A photo without its bytes, for listing a task's photos.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskPhotoMeta {
    pub id: Uuid,
    pub task_id: Uuid,
    pub history_id: Uuid,
    pub content_type: String,
    pub byte_size: i64,
    pub created_at: DateTime<Utc>,
}

impl TaskPhotoRecord {
    pub fn meta(&self) -> TaskPhotoMeta {
        TaskPhotoMeta {
            id: self.id,
            task_id: self.task_id,
            history_id: self.history_id,
            content_type: self.content_type.clone(),
            byte_size: i64::try_from(self.data.len()).unwrap_or(i64::MAX),
            created_at: self.created_at,
        }
    }
}
