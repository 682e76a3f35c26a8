-- Replace modelled (environment, day) units in the ledger: delete every modelled row of the units in `_cost_units`, then insert `_cost_rows`.
DELETE FROM billing
WHERE x_Modelled AND x_ReplaceUnit IN (SELECT unit FROM _cost_units);

INSERT INTO billing BY NAME SELECT * FROM _cost_rows;
