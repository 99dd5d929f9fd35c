On RelStorage with PostgreSQL, a commit no longer truncates RelStorage's three staging tables
(`temp_store` and the two others, created `ON COMMIT DELETE ROWS`): each store connection remakes
them to keep their rows, and the commit that moves its rows into `object_state` deletes them in
the same transaction, before it commits (truncating after a commit with blobs and once 10,000
rows were deleted). PostgreSQL's truncation took 1.1 ms of a 3 ms commit of a few objects, in
every process that commits, requests and workers alike; a job's pick-up on RelStorage is
about that much shorter. `temp_store` is analyzed as a page of no live row, so that the
planner keeps probing `object_state`'s index however many deleted rows the table's file holds.
