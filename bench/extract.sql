-- The DuckDB alternative to `quarry import`, for `make bench`: one statement.
-- read_text() loads each dump file as one string, regexp_extract_all() cuts it into pages
-- (everything up to a `Similar Posts` line plus its bullets), regexp_extract() pulls every field,
-- COPY writes one zstd Parquet file with the posts columns of warehouse.md, one row per unique hash.
-- Run by duckdb_extract.py, which fills in {inputs} (a list of file paths), {out} and {run_id}.
-- Simplifications (in DuckDB's favour): no HTML reference decoding, no extra_meta/unparsed_meta
-- (always empty), entities/image sources paired by position, truncated pages dropped silently.
COPY (
WITH files AS (
    SELECT filename, content FROM read_text({inputs})
),
cut AS (
    SELECT filename,
           regexp_extract_all(content,
               '(?s)(?:[ \t\r]*\n)*[^\n].*?\n[ \t]*(?i:similar[ \t]+posts)[ \t\r]*(?:\n|$)(?:[ \t\x{a0}]*[•\-*·] +[^\n]*\n)*') AS pages
    FROM files
),
pages AS (
    SELECT filename, unnest(pages) AS page, generate_subscripts(pages, 1) AS idx FROM cut
),
located AS (
    SELECT *,
           sum(strlen(page)) OVER (PARTITION BY filename ORDER BY idx) - strlen(page)
               + strlen(regexp_extract(page, '^(?:[ \t\r]*\n)*')) AS source_offset
    FROM pages
),
parts AS (
    SELECT filename, idx, source_offset,
           trim(regexp_extract(page, '^\s*([^\n]*)', 1), ' ' || chr(9) || chr(13)) AS title,
           regexp_extract(page, '(?s)^\s*[^\n]*\n(.*?)\n[ \t]*(?i:alphanode[ \t]+post[ \t]+meta)[ \t\r]*\n', 1) AS article,
           regexp_extract(page, '(?s)\n[ \t]*(?i:alphanode[ \t]+post[ \t]+meta)[ \t\r]*\n(.*)\n[ \t]*(?i:similar[ \t]+posts)[ \t\r]*(?:\n|$)', 1) || chr(10) AS meta,
           regexp_extract_all(regexp_extract(page, '(?is)\n[ \t]*similar[ \t]+posts[ \t\r]*\n(.*)$', 1),
               '(?m)^[ \t]*[•\-*·] +([^\r\n]*)', 1) AS similar_posts
    FROM located
),
fields AS (
    SELECT filename, idx, source_offset, title, similar_posts,
           list_filter(list_transform(string_split(article, chr(10)), lambda l: trim(l, ' ' || chr(9) || chr(13))),
               lambda l: l <> '' AND NOT regexp_matches(l, '^[•\-*·] ')
                         AND NOT regexp_matches(l, '(?i)\bvisual\s+reference\s+\d+(?:\.\s*image\s+source:.*)?$')) AS lines,
           lower(nullif(regexp_extract(meta, '(?im)^hash[ \t:]*([0-9a-f]{16,64})[ \t\r]*$', 1), '')) AS hash,
           nullif(trim(regexp_extract(meta, '(?im)^topic[ \t:]*([^\r\n]*)', 1)), '') AS topic,
           nullif(trim(regexp_extract(meta, '(?im)^summary[ \t:]*([^\r\n]*)', 1)), '') AS summary,
           nullif(trim(regexp_extract(meta, '(?im)^ai\s+brief[ \t:]*([^\r\n]*)', 1)), '') AS ai_brief,
           lower(nullif(trim(regexp_extract(meta, '(?im)^code\s+language[ \t:]*([^\r\n]*)', 1)), '')) AS code_language,
           lower(nullif(trim(regexp_extract(meta, '(?im)^difficulty[ \t:]*([^\r\n]*)', 1)), '')) AS difficulty,
           nullif(trim(regexp_extract(meta, '(?im)^reference[ \t:]*([^\r\n]*)', 1)), '') AS reference,
           nullif(trim(regexp_extract(meta, '(?im)^reading\s+time[ \t:]*([^\r\n]*)', 1)), '') AS reading_time_raw,
           nullif(trim(regexp_extract(meta, '(?im)^view\s+count[ \t:]*([^\r\n]*)', 1)), '') AS view_count_raw,
           regexp_extract(meta, '(?im)^ai\s+outline[ \t\r]*\n((?:[ \t]*[•\-*·] +[^\n]*\n)+)', 1) AS outline_b,
           regexp_extract(meta, '(?im)^score[ \t\r]*\n((?:[ \t]*[•\-*·] +[^\n]*\n)+)', 1) AS score_b,
           regexp_extract(meta, '(?im)^revision[ \t\r]*\n((?:[ \t]*[•\-*·] +[^\n]*\n)+)', 1) AS revision_b,
           regexp_extract(meta, '(?im)^flags[ \t\r]*\n((?:[ \t]*[•\-*·] +[^\n]*\n)+)', 1) AS flags_b,
           regexp_extract(meta, '(?im)^payload[ \t\r]*\n((?:[ \t]*[•\-*·] +[^\n]*\n)+)', 1) AS payload_b,
           regexp_extract(meta, '(?im)^entities[ \t\r]*\n((?:[ \t]*[•\-*·] +[^\n]*\n)+)', 1) AS entities_b,
           regexp_extract(meta, '(?im)^image\s+sources[ \t\r]*\n((?:[ \t]*[•\-*·] +[^\n]*\n)+)', 1) AS images_b,
           regexp_extract_all(regexp_extract(meta, '(?im)^stack[ \t\r]*\n((?:[ \t]*[•\-*·] +[^\n]*\n)+)', 1),
               '(?m)^[ \t]*[•\-*·] +([^\r\n]*?)[ \t]*$', 1) AS stack,
           regexp_extract_all(regexp_extract(meta, '(?im)^tools[ \t\r]*\n((?:[ \t]*[•\-*·] +[^\n]*\n)+)', 1),
               '(?m)^[ \t]*[•\-*·] +([^\r\n]*?)[ \t]*$', 1) AS tools,
           regexp_extract_all(regexp_extract(meta, '(?im)^checklist[ \t\r]*\n((?:[ \t]*[•\-*·] +[^\n]*\n)+)', 1),
               '(?m)^[ \t]*[•\-*·] +([^\r\n]*?)[ \t]*$', 1) AS checklist,
           regexp_extract_all(regexp_extract(meta, '(?im)^notes[ \t\r]*\n((?:[ \t]*[•\-*·] +[^\n]*\n)+)', 1),
               '(?m)^[ \t]*[•\-*·] +([^\r\n]*?)[ \t]*$', 1) AS notes
    FROM parts
),
values_ AS (
    SELECT *,
           [l FOR l IN lines IF regexp_matches(l, '[.!?…]["''”’)\]]*$')] AS paras,
           [l FOR l IN lines IF NOT regexp_matches(l, '[.!?…]["''”’)\]]*$')] AS headings,
           TRY_CAST(regexp_replace(reading_time_raw, '[,_ ]', '', 'g') AS INTEGER) AS reading_time_min,
           TRY_CAST(regexp_replace(view_count_raw, '[,_ ]', '', 'g') AS BIGINT) AS view_count,
           trim(regexp_extract(score_b, '(?im)quality\s*:\s*([^\r\n]*)', 1)) AS q_raw,
           trim(regexp_extract(score_b, '(?im)freshness\s*:\s*([^\r\n]*)', 1)) AS f_raw,
           trim(regexp_extract(score_b, '(?im)depth\s*:\s*([^\r\n]*)', 1)) AS d_raw,
           trim(regexp_extract(score_b, '(?im)clarity\s*:\s*([^\r\n]*)', 1)) AS c_raw,
           nullif(trim(regexp_extract(revision_b, '(?im)status\s*:\s*([^\r\n]*)', 1)), '') AS revision_status,
           nullif(trim(regexp_extract(revision_b, '(?im)version\s*:\s*([^\r\n]*)', 1)), '') AS revision_version,
           nullif(trim(regexp_replace(regexp_extract(revision_b, '(?im)last\s+reviewed\s*:\s*([^\r\n]*)', 1), '\s+', ' ', 'g')), '') AS lr_raw,
           lower(trim(regexp_extract(flags_b, '(?im)ai\s+generated\s+style\s*:\s*([^\r\n]*)', 1))) AS fl_ai,
           lower(trim(regexp_extract(flags_b, '(?im)has\s+images\s*:\s*([^\r\n]*)', 1))) AS fl_img,
           lower(trim(regexp_extract(flags_b, '(?im)image\s+heavy\s*:\s*([^\r\n]*)', 1))) AS fl_heavy,
           lower(trim(regexp_extract(flags_b, '(?im)needs\s+human\s+review\s*:\s*([^\r\n]*)', 1))) AS fl_review,
           nullif(trim(regexp_extract(payload_b, '(?im)source\s+id\s*:\s*([^\r\n]*)', 1)), '') AS source_id,
           nullif(trim(regexp_extract(payload_b, '(?im)generator\s*:\s*([^\r\n]*)', 1)), '') AS generator,
           nullif(trim(regexp_extract(payload_b, '(?im)scenario\s*:\s*([^\r\n]*)', 1)), '') AS scenario,
           nullif(trim(regexp_extract(payload_b, '(?im)paragraphs\s*:\s*([^\r\n]*)', 1)), '') AS par_raw,
           nullif(trim(regexp_extract(payload_b, '(?im)seed\s*:\s*([^\r\n]*)', 1)), '') AS seed_raw
    FROM fields
    WHERE hash IS NOT NULL
    QUALIFY row_number() OVER (PARTITION BY hash ORDER BY filename, idx) = 1
),
scored AS (
    SELECT *,
           array_to_string(paras, chr(10) || chr(10)) AS body,
           list_transform([q_raw, f_raw, d_raw, c_raw], lambda s:
               TRY_CAST(regexp_replace(s, '\s*(/100|%)$', '') AS DOUBLE)
               * CASE WHEN contains(s, '.') AND TRY_CAST(regexp_replace(s, '\s*(/100|%)$', '') AS DOUBLE) BETWEEN 0 AND 1
                      THEN 100 ELSE 1 END) AS nums,
           try_strptime(lr_raw, ['%Y-%m-%d', '%Y/%m/%d', '%d %b %Y', '%b %d, %Y', '%B %d, %Y'])::DATE AS last_reviewed,
           TRY_CAST(regexp_replace(par_raw, '[,_ ]', '', 'g') AS INTEGER) AS paragraphs_declared,
           TRY_CAST(regexp_replace(seed_raw, '[,_ ]', '', 'g') AS BIGINT) AS seed
    FROM values_
),
final AS (
    SELECT *,
           list_transform(nums, lambda v: CASE WHEN v BETWEEN 0 AND 100 THEN floor(v + 0.5)::INTEGER END) AS scores,
           CASE WHEN trim(body) = '' THEN 0 ELSE len(regexp_split_to_array(trim(body), '\s+')) END AS word_count
    FROM scored
)
SELECT
    hash, title, headings, body, topic, summary, ai_brief,
    CASE WHEN outline_b = '' THEN NULL ELSE {
        'context': nullif(trim(regexp_extract(outline_b, '(?im)context\s*:\s*([^\r\n]*)', 1)), ''),
        'problem': nullif(trim(regexp_extract(outline_b, '(?im)problem\s*:\s*([^\r\n]*)', 1)), ''),
        'stack': nullif(trim(regexp_extract(outline_b, '(?im)stack\s*:\s*([^\r\n]*)', 1)), ''),
        'recommended_action': nullif(trim(regexp_extract(outline_b, '(?im)recommended\s+action\s*:\s*([^\r\n]*)', 1)), '')
    } END AS ai_outline,
    stack, tools, checklist, notes, similar_posts,
    code_language, difficulty, reading_time_min, view_count,
    scores[1] AS quality_score, scores[2] AS freshness_score, scores[3] AS depth_score, scores[4] AS clarity_score,
    scores[1] / 100 AS quality_norm, scores[2] / 100 AS freshness_norm,
    scores[3] / 100 AS depth_norm, scores[4] / 100 AS clarity_norm,
    revision_status, revision_version, last_reviewed, reference,
    CASE WHEN fl_ai IN ('1', 'true', 'yes') THEN true WHEN fl_ai IN ('0', 'false', 'no') THEN false END AS flag_ai_generated_style,
    CASE WHEN fl_img IN ('1', 'true', 'yes') THEN true WHEN fl_img IN ('0', 'false', 'no') THEN false END AS flag_has_images,
    CASE WHEN fl_heavy IN ('1', 'true', 'yes') THEN true WHEN fl_heavy IN ('0', 'false', 'no') THEN false END AS flag_image_heavy,
    CASE WHEN fl_review IN ('1', 'true', 'yes') THEN true WHEN fl_review IN ('0', 'false', 'no') THEN false END AS flag_needs_human_review,
    list_transform(list_zip(
        regexp_extract_all(entities_b, '(?im)name\s*:\s*([^\r\n]*?)[ \t]*$', 1),
        regexp_extract_all(entities_b, '(?im)type\s*:\s*([^\r\n]*?)[ \t]*$', 1)),
        lambda e: {'name': e[1], 'type': e[2]}) AS entities,
    list_transform(list_zip(
        regexp_extract_all(images_b, '(?im)source\s*:\s*([^\r\n]*?)[ \t]*$', 1),
        regexp_extract_all(images_b, '(?im)url\s*:\s*([^\r\n]*?)[ \t]*$', 1),
        regexp_extract_all(images_b, '(?im)caption\s*:\s*([^\r\n]*?)[ \t]*$', 1)),
        lambda e: {'source': e[1], 'url': e[2], 'caption': e[3]}) AS image_sources,
    source_id, generator, scenario, paragraphs_declared, seed,
    MAP([]::VARCHAR[], []::VARCHAR[][]) AS extra_meta,
    []::VARCHAR[] AS unparsed_meta,
    word_count::INTEGER AS word_count,
    len(paras)::INTEGER AS paragraph_count,
    word_count / 200 AS reading_time_est_min,
    CASE WHEN coalesce(scores[1], scores[2], scores[3], scores[4]) IS NOT NULL THEN
        (0.4 * coalesce(scores[1], 0) + 0.2 * coalesce(scores[2], 0) + 0.2 * coalesce(scores[3], 0) + 0.2 * coalesce(scores[4], 0)) / 100
        / (CASE WHEN scores[1] IS NULL THEN 0 ELSE 0.4 END + CASE WHEN scores[2] IS NULL THEN 0 ELSE 0.2 END
           + CASE WHEN scores[3] IS NULL THEN 0 ELSE 0.2 END + CASE WHEN scores[4] IS NULL THEN 0 ELSE 0.2 END)
    END AS quality_composite,
    ((topic IS NOT NULL)::INT + (summary IS NOT NULL)::INT + (ai_brief IS NOT NULL)::INT + (code_language IS NOT NULL)::INT
     + (difficulty IS NOT NULL)::INT + (reference IS NOT NULL)::INT + 1 + (reading_time_min IS NOT NULL)::INT
     + (view_count IS NOT NULL)::INT + (outline_b <> '')::INT + (len(stack) > 0)::INT + (len(tools) > 0)::INT
     + (len(checklist) > 0)::INT + (len(notes) > 0)::INT + (coalesce(scores[1], scores[2], scores[3], scores[4]) IS NOT NULL)::INT
     + (revision_b <> '')::INT + (flags_b <> '')::INT + (entities_b <> '')::INT + (images_b <> '')::INT
     + (payload_b <> '')::INT) / 20 AS completeness,
    CASE WHEN reference IS NULL OR source_id IS NULL OR seed IS NULL
         OR regexp_extract(reference, '\d+') = '' OR regexp_extract(source_id, '\d+') = '' THEN NULL
         ELSE regexp_extract(reference, '\d+')::BIGINT = seed AND regexp_extract(source_id, '\d+')::BIGINT = seed
    END AS ids_consistent,
    md5(lower(regexp_replace(title || ' ' || body, '\s+', ' ', 'g'))) AS content_fingerprint,
    list_filter([
        CASE WHEN view_count_raw IS NOT NULL AND view_count IS NULL THEN 'view_count:unparsable' END,
        CASE WHEN reading_time_raw IS NOT NULL AND reading_time_min IS NULL THEN 'reading_time_min:unparsable' END,
        CASE WHEN q_raw <> '' AND nums[1] IS NULL THEN 'quality_score:unparsable'
             WHEN nums[1] IS NOT NULL AND scores[1] IS NULL THEN 'quality_score:out_of_range' END,
        CASE WHEN f_raw <> '' AND nums[2] IS NULL THEN 'freshness_score:unparsable'
             WHEN nums[2] IS NOT NULL AND scores[2] IS NULL THEN 'freshness_score:out_of_range' END,
        CASE WHEN d_raw <> '' AND nums[3] IS NULL THEN 'depth_score:unparsable'
             WHEN nums[3] IS NOT NULL AND scores[3] IS NULL THEN 'depth_score:out_of_range' END,
        CASE WHEN c_raw <> '' AND nums[4] IS NULL THEN 'clarity_score:unparsable'
             WHEN nums[4] IS NOT NULL AND scores[4] IS NULL THEN 'clarity_score:out_of_range' END,
        CASE WHEN lr_raw IS NOT NULL AND last_reviewed IS NULL THEN 'last_reviewed:unparsable' END,
        CASE WHEN par_raw IS NOT NULL AND paragraphs_declared IS NULL THEN 'paragraphs_declared:unparsable' END,
        CASE WHEN seed_raw IS NOT NULL AND seed IS NULL THEN 'seed:unparsable' END
    ], lambda x: x IS NOT NULL) AS issues,
    filename AS source_file,
    source_offset::BIGINT AS source_offset,
    '{run_id}' AS run_id,
    now() AS ingested_at
FROM final
) TO '{out}' (FORMAT parquet, COMPRESSION zstd);
