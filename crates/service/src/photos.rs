//! Photos taken for a step of a task (a door knocked on, a delivery left at
//! a quarantined household). Only JPEG, PNG and WebP, recognised by their
//! first bytes rather than by what the client claims; at most a configured
//! size each and a configured number per step. They are stored in the
//! database with the step, in its transaction, and shown only to those who
//! may see the task.

use chrono::{DateTime, Utc};
use epigrid_store::{TaskHistoryRecord, TaskPhotoRecord};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::audit::Target;
use crate::{Actor, Service, ServiceError, ServiceResult};

/// Limits on photos, set by configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhotoSettings {
    /// Largest accepted photo, in bytes (default 5 MiB: a phone camera's
    /// JPEG at full size, which the page does not shrink).
    pub max_bytes: usize,
    /// Most photos on one step.
    pub max_per_step: usize,
}

impl Default for PhotoSettings {
    fn default() -> Self {
        Self { max_bytes: 5 * 1024 * 1024, max_per_step: 3 }
    }
}

impl PhotoSettings {
    /// The largest request body that can carry a step's photos as base64 in
    /// JSON: 4/3 of the bytes, plus room for the rest of the step.
    pub fn max_request_bytes(&self) -> usize {
        (self.max_bytes * self.max_per_step).div_ceil(3) * 4 + 64 * 1024
    }
}

/// A photo whose type and size have been checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedPhoto {
    pub content_type: &'static str,
    pub data: Vec<u8>,
}

/// A stored photo as callers list it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PhotoView {
    pub id: Uuid,
    pub history_id: Uuid,
    pub content_type: String,
    pub byte_size: i64,
    pub created_at: DateTime<Utc>,
}

/// The image type the bytes begin with, if it is one we accept. The client's
/// content type is never trusted: a page could label anything `image/jpeg`.
pub fn sniff(bytes: &[u8]) -> Option<&'static str> {
    match bytes {
        [0xFF, 0xD8, 0xFF, ..] => Some("image/jpeg"),
        [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, ..] => Some("image/png"),
        [b'R', b'I', b'F', b'F', _, _, _, _, b'W', b'E', b'B', b'P', ..] => Some("image/webp"),
        _ => None,
    }
}

/// Checks the count, then each photo's size and type, naming the photo
/// (`photos[1]`) that fails.
pub fn check_photos(
    settings: &PhotoSettings,
    photos: Vec<Vec<u8>>,
) -> ServiceResult<Vec<CheckedPhoto>> {
    if photos.len() > settings.max_per_step {
        return Err(ServiceError::invalid("photos", "photo.too_many"));
    }
    photos
        .into_iter()
        .enumerate()
        .map(|(i, data)| {
            let field = format!("photos[{i}]");
            if data.is_empty() {
                return Err(ServiceError::invalid(field, "photo.empty"));
            }
            if data.len() > settings.max_bytes {
                return Err(ServiceError::invalid(field, "photo.too_large"));
            }
            let content_type = sniff(&data)
                .ok_or_else(|| ServiceError::invalid(field, "photo.unsupported_type"))?;
            Ok(CheckedPhoto { content_type, data })
        })
        .collect()
}

/// The records to store for `step`.
pub(crate) fn photo_records(
    step: &TaskHistoryRecord,
    photos: Vec<CheckedPhoto>,
) -> Vec<TaskPhotoRecord> {
    photos
        .into_iter()
        .map(|p| TaskPhotoRecord {
            id: Uuid::now_v7(),
            task_id: step.task_id,
            history_id: step.id,
            community_id: step.community_id,
            content_type: p.content_type.to_owned(),
            data: p.data,
            created_at: step.at,
        })
        .collect()
}

impl Service {
    /// The photos of a task the actor may see, without their bytes.
    pub async fn task_photos(&self, actor: &Actor, task_id: Uuid) -> ServiceResult<Vec<PhotoView>> {
        self.visible_task(actor, task_id).await?;
        let photos = self.store().list_task_photos(task_id).await?;
        Ok(photos
            .into_iter()
            .map(|p| PhotoView {
                id: p.id,
                history_id: p.history_id,
                content_type: p.content_type,
                byte_size: p.byte_size,
                created_at: p.created_at,
            })
            .collect())
    }

    /// One photo of a task, bytes and all, for someone who may see the task.
    /// A photo of another task is as unknown as a missing one. Viewing is
    /// audited: a photo of a doorway can show a person.
    pub async fn task_photo(
        &self,
        actor: &Actor,
        task_id: Uuid,
        photo_id: Uuid,
    ) -> ServiceResult<TaskPhotoRecord> {
        let task = self.visible_task(actor, task_id).await?;
        let photo = self
            .store()
            .get_task_photo(photo_id)
            .await?
            .filter(|p| p.task_id == task.id)
            .ok_or(ServiceError::NotFound)?;
        self.audit(
            actor,
            "task.photo_view",
            Some(Target { kind: "task", id: task.id, path: Some(&task.path) }),
            "ok",
            serde_json::json!({ "photo_id": photo.id }),
        )
        .await?;
        Ok(photo)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_are_recognised_by_their_first_bytes() {
        assert_eq!(sniff(b"\xFF\xD8\xFF\xE0\0\x10JFIF"), Some("image/jpeg"));
        assert_eq!(sniff(b"\x89PNG\r\n\x1A\n\0\0\0\rIHDR"), Some("image/png"));
        assert_eq!(sniff(b"RIFF\x24\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(sniff(b"RIFF\x24\0\0\0WAVEfmt "), None, "a RIFF that is not WebP");
        assert_eq!(sniff(b"GIF89a"), None);
        assert_eq!(sniff(b"<svg xmlns="), None, "SVG can carry script");
        assert_eq!(sniff(b"\xFF\xD8"), None, "too short to be a JPEG");
        assert_eq!(sniff(b""), None);
    }

    #[test]
    fn limits_name_the_photo_that_breaks_them() {
        let settings = PhotoSettings { max_bytes: 10, max_per_step: 2 };
        let jpeg = b"\xFF\xD8\xFF\xE0abc".to_vec();
        let ok = check_photos(&settings, vec![jpeg.clone()]).unwrap();
        assert_eq!(ok[0].content_type, "image/jpeg");
        let error = check_photos(&settings, vec![jpeg.clone(); 3]).unwrap_err();
        assert_eq!((error.field(), error.code()), (Some("photos"), "photo.too_many"));
        let big = [jpeg.clone(), vec![0xFF, 0xD8, 0xFF].into_iter().chain([0; 8]).collect()];
        let error = check_photos(&settings, big.to_vec()).unwrap_err();
        assert_eq!((error.field(), error.code()), (Some("photos[1]"), "photo.too_large"));
        let error = check_photos(&settings, vec![b"%PDF-1.7".to_vec()]).unwrap_err();
        assert_eq!((error.field(), error.code()), (Some("photos[0]"), "photo.unsupported_type"));
        let error = check_photos(&settings, vec![Vec::new()]).unwrap_err();
        assert_eq!(error.code(), "photo.empty");
    }

    #[test]
    fn the_request_limit_fits_the_largest_step() {
        let settings = PhotoSettings::default();
        let base64 = (settings.max_bytes * 3).div_ceil(3) * 4;
        assert!(settings.max_request_bytes() > base64);
        assert!(settings.max_request_bytes() < 21 * 1024 * 1024);
    }
}
