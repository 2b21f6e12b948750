-- Free space kept ahead inside the database file (issue #6; SQLite only).
-- When idle, the intake writer commits a row of zeros here and then deletes
-- it, which leaves its pages free inside the file for later writes to
-- reuse (`IntakeStore::keep_room`). Empty except between those two
-- statements, or after a crash between them (the next slice deletes it).
CREATE TABLE storage_room (filler BLOB NOT NULL);
