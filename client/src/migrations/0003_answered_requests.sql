
    -- The seq of the pending request each imported license answered. That
    -- request and every one before it are forgotten from then on: the
    -- newest license's answered_seq is the mark, and rows at or below it
    -- are no longer pending even while they are still stored (they are
    -- deleted in batches, see FORGOTTEN_BATCH). NULL on licenses imported
    -- before this migration, whose forgotten requests were deleted at once.
    ALTER TABLE licenses ADD COLUMN answered_seq INTEGER;
    