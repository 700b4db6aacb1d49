-- Keep a small message's stored MIME in its row. With PostgreSQL's default target (about 2 KB)
-- a 2 KB message, compressed, still tips its row over and moves to the TOAST table: one more
-- tuple and index entry per send, and once large messages have come and gone, that small
-- tuple lands in a free gap of some old TOAST page, whose first change after a checkpoint is
-- logged whole (measured in BENCHMARKS.md: 1.0 full-page image per 2 KB send after C-CDAs).
-- Half a page: rows still compress above it, and C-CDAs still go to TOAST.
ALTER TABLE messages SET (toast_tuple_target = 4080);
