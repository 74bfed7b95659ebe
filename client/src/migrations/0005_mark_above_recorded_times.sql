
    -- From now on the clock's high-water mark is written in the same
    -- transaction as every time column of newest_recorded_time!, so a mark below
    -- one of them means the mark was lowered. Registers did not record it
    -- before, so a pending request can be a little newer than the mark:
    -- raise the mark to every recorded time once. A missing mark stays
    -- missing: this store had one (see `open_connection`).
    UPDATE clock SET high_water_mark = max(high_water_mark,
        coalesce((SELECT max(imported_at) FROM licenses), high_water_mark),
        coalesce((SELECT max(replaced_at) FROM licenses), high_water_mark),
        coalesce((SELECT max(deactivated_at) FROM licenses), high_water_mark),
        coalesce((SELECT max(released_at) FROM release_receipts), high_water_mark),
        coalesce((SELECT max(created_at) FROM pending_requests), high_water_mark));
    