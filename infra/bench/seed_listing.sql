-- 100 processed-looking files owned by the demo engineer (once per bench database): the rows the
-- HTTP benchmarks list. Used by http_api.sh and bench.py.
INSERT INTO cad_files (uploaded_by, filename, original_name, file_size, mime_type, s3_key, status, tags,
                       project_name, part_name, description, metadata, thumbnails)
SELECT u.id, 'part-' || i || '.stl', 'part-' || i || '.stl', 10000 + i * 977, 'model/stl', 'uploads/bench/' || i,
       'ready', ARRAY['steel', 'batch-' || (i % 7)], 'Rover', 'Part ' || (i % 13), 'Bench part ' || i,
       jsonb_build_object('format', 'stl', 'triangles', 1000 + i * 13, 'bbox_min', jsonb_build_array(-i, -12.5, 0),
                          'bbox_max', jsonb_build_array(i, 12.5, 30.25), 'surface_area', 1234.5 + i, 'volume', 4567.8 + i,
                          'watertight', true, 'bodies', 1),
       jsonb_build_array(jsonb_build_object('width', 320, 'format', 'webp', 'key', 'thumbnails/' || md5(i::text) || '/320.webp'),
                         jsonb_build_object('width', 640, 'format', 'webp', 'key', 'thumbnails/' || md5(i::text) || '/640.webp'))
FROM generate_series(1, 100) i, users u
WHERE u.cognito_sub = 'demo-engineer' AND NOT EXISTS (SELECT 1 FROM cad_files WHERE s3_key = 'uploads/bench/1');
