-- PassportPDF compatibility (/api, squeezer.api.compat.passportpdf).  A PassportPDF document is
-- loaded once, reduced in place, saved later: its FileId is the Squeezer file id of the loaded
-- upload, and current_file_id the file that is its content now (Reduce replaces it with the
-- job's result).  versions lists every file the document has had, so DocumentClose deletes
-- them all.
create table compat_passportpdf_documents (
    file_id          uuid primary key references files (id) on delete cascade,
    key_id           uuid not null references api_keys (id) on delete cascade,
    current_file_id  uuid not null references files (id) on delete cascade,
    name             text not null,
    page_count       integer,
    versions         uuid[] not null default '{}',
    created_at       timestamptz not null default now(),
    updated_at       timestamptz not null default now()
);
create index compat_passportpdf_documents_key on compat_passportpdf_documents (key_id);
