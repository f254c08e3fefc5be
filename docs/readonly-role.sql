-- A read-only role for BI tools: it can SELECT the lineage views (the SQL contract) and call the
-- lineage functions, and nothing else; the tables behind the views stay private.
-- PostgreSQL. Run as the schema owner (the user that ran `lineage-exporter db upgrade`), once per
-- database, and again after upgrades that add views:
--     psql "$DATABASE_URL" -f docs/readonly-role.sql
-- then give people a login in the role:
--     CREATE ROLE alice LOGIN PASSWORD '...' IN ROLE lineage_reader;

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'lineage_reader') THEN
        CREATE ROLE lineage_reader NOLOGIN;
    END IF;
END
$$;

GRANT USAGE ON SCHEMA public TO lineage_reader;
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM lineage_reader;

-- Views run with their owner's rights, so SELECT on a view is all a reader needs.
DO $$
DECLARE
    view_name text;
BEGIN
    FOR view_name IN
        SELECT viewname FROM pg_views WHERE schemaname = 'public' AND viewname LIKE 'lineage\_%'
    LOOP
        EXECUTE format('GRANT SELECT ON %I TO lineage_reader', view_name);
    END LOOP;
END
$$;

-- The traversal functions read the tables: they run with their owner's rights, on a fixed
-- search_path so that a reader cannot substitute objects of their own.
ALTER FUNCTION lineage_upstream(text, timestamptz, int, text, text, boolean)
    SECURITY DEFINER SET search_path = public, pg_temp;
ALTER FUNCTION lineage_downstream(text, timestamptz, int, text, text, boolean)
    SECURITY DEFINER SET search_path = public, pg_temp;
REVOKE EXECUTE ON FUNCTION lineage_upstream(text, timestamptz, int, text, text, boolean) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION lineage_downstream(text, timestamptz, int, text, text, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lineage_upstream(text, timestamptz, int, text, text, boolean) TO lineage_reader;
GRANT EXECUTE ON FUNCTION lineage_downstream(text, timestamptz, int, text, text, boolean) TO lineage_reader;
