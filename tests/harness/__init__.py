"""The end-to-end test harness: real `gengate serve` / `gengate emulate` processes, real HTTP,
nothing mocked. tests/conftest.py turns these into fixtures.

- `services`: PostgreSQL (`Backend`, a fresh `gengate_<hex>` database per module) and Redis (a random
  key prefix), skipped or failed (GENGATE_TEST_REQUIRE_SERVICES=1) when missing.
- `cli`: `cli` / `cli_run`, `python -m gengate ...` with the fast timings (`base_env`).
- `processes`: `GengateServer`, `Emulator`, `EmulatorControl`, `free_port`, `http_json`.
- one client helper per family: `vidu` (`ViduClient`, `assert_vidu_error`), `unified` (`/v1/tasks`),
  `openai` (the official SDK on `/v1`, OpenAI channels on the emulator, balances and usage records);
  `webhooks` (a recording receiver); `durability` (crash/fault timings and the books check).
"""
