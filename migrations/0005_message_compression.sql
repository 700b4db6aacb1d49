-- The stored MIME is the biggest thing a send writes. lz4 compresses it faster and smaller than
-- the default pglz (measured in BENCHMARKS.md). Servers built without lz4 (or older than
-- PostgreSQL 14) keep pglz: the statement fails there and the failure is ignored.
DO $$
BEGIN
    EXECUTE 'ALTER TABLE messages ALTER COLUMN mime SET COMPRESSION lz4';
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'lz4 compression is not available; messages.mime keeps the default';
END
$$;
