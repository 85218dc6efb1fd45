-- Compressor.app compatibility (/1.0, squeezer.api.compat.compressor): what its result JSON
-- needs beyond the native rows.  The native layer stores sha256 only; Compressor.app clients
-- get sha1, computed once from the stored blob when a result is first shown and kept here.
create table compat_file_sha1 (
    file_id  uuid primary key references files (id) on delete cascade,
    sha1     text not null check (sha1 ~ '^[0-9a-f]{40}$')
);

-- A job created through /1.0: where its result is to be written (an external storage
-- connector, migration 0004) and, once written, the URL returned instead of the temporary one.
create table compat_compressor_jobs (
    job_id       uuid primary key references jobs (id) on delete cascade,
    key_id       uuid not null references api_keys (id) on delete cascade,
    store        jsonb,                  -- {"connector", "bucket", "path", ...}; null: none
    stored_url   text,
    stored_at    timestamptz,
    store_error  text
);
