-- External storage connectors (Compressor.app's "External Storage Connectors"): provider
-- credentials a key stores once and names by id in later requests.  The credentials and the
-- provider settings are sealed with AES-256-GCM under a key derived (HKDF-SHA256) from
-- SQUEEZER_SECRET_KEY, with the row's id and key_id as associated data, so a copied row or a
-- database dump reveals nothing; see squeezer.api.compat._connectors and docs/compat.md.
create table storage_connectors (
    id          uuid primary key,
    key_id      uuid not null references api_keys (id) on delete cascade,
    provider    text not null check (provider in ('s3', 'gcs', 'azure')),
    name        text not null,
    sealed      bytea not null,          -- 12-byte nonce || AES-GCM ciphertext and tag
    created_at  timestamptz not null default now()
);
create index storage_connectors_key on storage_connectors (key_id, created_at desc);
