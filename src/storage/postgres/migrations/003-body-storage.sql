-- Body rows stored inline (issue 15, R-X17 RETR throughput, R-X9).
-- pg-bodies.ts writes bodies in rows of BODY_CHUNK = 8120 octets (the tail in equal rows of at
-- most 2000, which pack four to a page): with its header and the other columns a full row is 8160
-- octets, the most one 8 KiB heap page holds. PostgreSQL moves a
-- row's values out of line (TOAST, in ~2 KB pieces, each fetched through the TOAST index on
-- every read) once the row passes toast_tuple_target (2032 by default); raising it to 8160 keeps
-- every new row whole in its heap page, read with no TOAST lookups. The data column stays
-- STORAGE EXTERNAL (001): a larger row, such as the 256 KiB rows an older poplar wrote, still
-- goes out of line uncompressed.
-- Existing rows are not rewritten (no table rewrite, only a brief lock): they are read as before,
-- a row of any size; bodies delivered from now on are written in the new rows.
ALTER TABLE body_chunks SET (toast_tuple_target = 8160);

-- The row size each body was written in, so a read asks for about a MiB of rows per query
-- whatever the size (R-X9): bodies stored before this migration, or by an older poplar still
-- running during an upgrade, have 256 KiB rows (the default); pg-bodies.ts writes 8120.
ALTER TABLE bodies ADD COLUMN chunk_octets integer NOT NULL DEFAULT 262144 CHECK (chunk_octets > 0);
