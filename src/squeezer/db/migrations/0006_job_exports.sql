-- Durable exports and per-job webhook formats (issue 4, Compressor.app).
--
-- job_exports: a job whose result is also written to an external storage connector
-- (migration 0004).  Written in the transaction that creates the job; the worker writes the
-- result to the bucket after storing it and records url + exported_at in the transaction that
-- marks the job succeeded (an export that fails fails the job, code export_failed, and leaves
-- the reason in error).  See squeezer.jobs.exports and docs/compat.md.
create table job_exports (
    job_id        uuid primary key references jobs (id) on delete cascade,
    connector_id  uuid references storage_connectors (id) on delete set null,
    bucket        text not null,
    path          text,                  -- object key; null or ending in '/': + the input's name
    url           text,                  -- the object's permanent URL, once written
    error         text,                  -- why the last write failed
    exported_at   timestamptz
);

-- What a job's webhook POSTs: 'native' (the job JSON) or 'compressor' (Compressor.app's result
-- JSON); squeezer.jobs.webhooks.job_body dispatches on it.
alter table jobs add column webhook_format text not null default 'native';

-- SHA-1 of a file (Compressor.app's hash), computed by the worker while it stores a job's files;
-- null for files stored before this migration until first asked for.
alter table files add column sha1 text check (sha1 is null or sha1 ~ '^[0-9a-f]{40}$');

-- The Compressor.app tables of migration 0003 become the generic ones above.
update files f set sha1 = c.sha1 from compat_file_sha1 c where c.file_id = f.id;
insert into job_exports (job_id, connector_id, bucket, path, url, error, exported_at)
    select c.job_id, s.id, c.store ->> 'bucket', c.store ->> 'path', c.stored_url,
           c.store_error, c.stored_at
    from compat_compressor_jobs c
    left join storage_connectors s on s.id::text = c.store ->> 'connector'
    where c.store is not null and coalesce(c.store ->> 'bucket', '') <> '';
update jobs set webhook_format = 'compressor'
    where id in (select job_id from compat_compressor_jobs);
drop table compat_file_sha1;
drop table compat_compressor_jobs;
