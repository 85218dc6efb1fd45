-- Long polling and webhooks need to know when a job changes: every change of a
-- job's state or progress is announced on channel 'squeezer_jobs' with the job id,
-- whichever process (API, worker, sweep) made it.
create function squeezer_notify_job() returns trigger language plpgsql as $$
begin
    perform pg_notify('squeezer_jobs', new.id::text);
    return new;
end $$;

create trigger jobs_notify after update of state, progress on jobs
    for each row execute function squeezer_notify_job();

-- What a job was asked for beyond its options: the input's display name (for URL
-- inputs it is known only after the fetch), and when it ended for the webhook's event.
alter table jobs add column input_name text;
alter table jobs add column cancelled_at timestamptz;
create index jobs_expiry on jobs (expires_at);
create index files_deleted on files (deleted_at) where deleted_at is not null;
