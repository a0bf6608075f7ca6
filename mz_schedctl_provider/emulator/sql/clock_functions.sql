CREATE FUNCTION mz_emulator.now() RETURNS timestamptz
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ SELECT pg_catalog.now() + "offset" FROM mz_emulator.clock $$;
COMMENT ON FUNCTION mz_emulator.now() IS
  'The emulator clock: the transaction start time plus the offset added by mz_emulator.advance.';

CREATE FUNCTION mz_emulator.clock_offset() RETURNS interval
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ SELECT "offset" FROM mz_emulator.clock $$;

CREATE FUNCTION mz_catalog.now() RETURNS timestamptz LANGUAGE sql STABLE
AS $$ SELECT mz_emulator.now() $$;
CREATE FUNCTION mz_catalog.transaction_timestamp() RETURNS timestamptz LANGUAGE sql STABLE
AS $$ SELECT mz_emulator.now() $$;
CREATE FUNCTION mz_catalog.statement_timestamp() RETURNS timestamptz LANGUAGE sql STABLE
AS $$ SELECT pg_catalog.statement_timestamp() + mz_emulator.clock_offset() $$;
CREATE FUNCTION mz_catalog.clock_timestamp() RETURNS timestamptz LANGUAGE sql VOLATILE
AS $$ SELECT pg_catalog.clock_timestamp() + mz_emulator.clock_offset() $$;

CREATE DOMAIN mz_catalog.mz_timestamp AS numeric;
CREATE FUNCTION mz_catalog.mz_now() RETURNS mz_catalog.mz_timestamp LANGUAGE sql STABLE
AS $$ SELECT floor(extract(epoch FROM mz_emulator.now()) * 1000)::mz_catalog.mz_timestamp $$;

-- Materialize's version function; reads the seeded setting so it matches SHOW mz_version.
CREATE FUNCTION mz_catalog.mz_version() RETURNS text LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = mz_emulator, pg_catalog
AS $$ SELECT value FROM mz_emulator.settings WHERE name = 'mz_version' $$;

-- Temporal filters compare mz_now() with timestamps: provide the comparison operators.
CREATE FUNCTION mz_emulator.mz_ts_to_tstz(mz_catalog.mz_timestamp) RETURNS timestamptz
LANGUAGE sql IMMUTABLE AS $$ SELECT pg_catalog.to_timestamp($1::float8 / 1000) $$;
