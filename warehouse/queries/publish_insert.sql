-- Insert the new rows of a load, by column name, tagged with the load id.
INSERT INTO {table} BY NAME
SELECT * EXCLUDE (_file){load_id} FROM _fresh_{table}
