-- Keys, files, jobs, webhook deliveries and rate-limit windows.
-- Ids are random UUIDs (never guessable); every row that belongs to a client
-- carries key_id, and every query filters on it.

create table api_keys (
    id             uuid primary key,
    name           text not null,
    prefix         text not null,            -- first characters, shown in listings
    secret_hash    bytea not null unique,    -- sha256 of the whole key; the key itself is never stored
    webhook_secret text not null,            -- signs this key's webhooks (Standard Webhooks)
    is_admin       boolean not null default false,
    created_at     timestamptz not null default now(),
    last_used_at   timestamptz,
    revoked_at     timestamptz
);

create table files (
    id          uuid primary key,
    key_id      uuid not null references api_keys (id),
    kind        text not null check (kind in ('upload', 'result')),
    name        text not null,                -- sanitised display name, never a path
    size        bigint not null check (size >= 0),
    mime        text not null,
    sha256      text not null,
    blob_key    text not null,                -- server-generated storage key
    created_at  timestamptz not null default now(),
    expires_at  timestamptz not null,
    deleted_at  timestamptz
);
create index files_key_created on files (key_id, created_at desc);
create index files_expiry on files (expires_at) where deleted_at is null;

create table jobs (
    id               uuid primary key,
    key_id           uuid not null references api_keys (id),
    operation        text not null,
    state            text not null default 'queued'
                     check (state in ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    progress         real not null default 0 check (progress between 0 and 1),
    input            jsonb not null,          -- {"file_id": ...} or {"url": ...}
    options          jsonb not null default '{}',
    input_file_id    uuid references files (id),
    output_file_id   uuid references files (id),
    report           jsonb,
    error_code       text,
    error_message    text,
    webhook_url      text,
    idempotency_key  text,
    attempts         integer not null default 0,
    created_at       timestamptz not null default now(),
    started_at       timestamptz,
    finished_at      timestamptz,
    expires_at       timestamptz not null,
    unique (key_id, idempotency_key)
);
create index jobs_key_created on jobs (key_id, created_at desc);
create index jobs_state on jobs (state) where state in ('queued', 'running');

create table webhook_deliveries (
    id          bigserial primary key,
    job_id      uuid not null references jobs (id) on delete cascade,
    webhook_id  text not null,               -- the same across retries of one event
    attempt     integer not null,
    status      integer,                     -- receiver's HTTP status, null when none
    error       text,
    attempted_at timestamptz not null default now()
);
create index webhook_deliveries_job on webhook_deliveries (job_id, attempted_at);

create table rate_limit_windows (
    key_id        uuid not null references api_keys (id) on delete cascade,
    window_start  timestamptz not null,
    hits          integer not null,
    primary key (key_id, window_start)
);
