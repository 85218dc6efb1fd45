-- A job-change notice carries the job's new state ("<id> <state>"): a request waiting for a
-- job to end re-reads the row only when the notice says it ended, not on every progress tick.
create or replace function squeezer_notify_job() returns trigger language plpgsql as $$
begin
    perform pg_notify('squeezer_jobs', new.id::text || ' ' || new.state);
    return new;
end $$;
