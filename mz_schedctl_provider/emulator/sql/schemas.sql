CREATE SCHEMA mz_emulator;
CREATE SCHEMA mz_catalog;
CREATE SCHEMA mz_internal;
REVOKE ALL ON SCHEMA mz_emulator FROM PUBLIC;
-- USAGE only so the control functions can be called; no table in it is readable.
GRANT USAGE ON SCHEMA mz_emulator TO PUBLIC;
GRANT USAGE ON SCHEMA mz_catalog, mz_internal TO PUBLIC;
ALTER DEFAULT PRIVILEGES IN SCHEMA mz_emulator REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
