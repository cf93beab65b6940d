"""`fleet deploy`: a board joins the fleet through the ordinary deploy (edgeloop/link/deploy.py).

The deploy plan gets the fleet's files on top of the run's: config.json's "fleet" section
(device id, the broker as the board reaches it), secrets.json (its MQTT password and the Wi-Fi
credentials from $EDGELOOP_WIFI_SSID / $EDGELOOP_WIFI_PASSWORD: straight from the host's
environment to the board, never into a run folder or a log), the OTA public key and, on a board
that has none yet, version.json (version 0: deployed by cable; a board keeps its OTA version
across re-deploys, so an old signed bundle stays a replay).
"""

from __future__ import annotations

import json

from edgeloop.fleet.broker import BrokerAddress
from edgeloop.fleet.registry import Fleet
from edgeloop.fleet.virtual import ca_file, fleet_config, secrets_json
from edgeloop.link.deploy import CONFIG_PATH, DeployPlan
from edgeloop.link.transport import Transport


def fleet_plan(fleet: Fleet, plan: DeployPlan, device: str, broker: BrokerAddress,
               transport: Transport, env: dict[str, str] | None = None) -> DeployPlan:
    fleet.password(device)  # provisioned? (a clear error before anything is copied)
    files = dict(plan.files)
    cfg = json.loads(files[CONFIG_PATH])
    cfg["fleet"] = fleet_config(device, broker, fleet.prefix)
    if "sim" in cfg.get("sensor", {}):
        cfg["sensor"]["loop"] = True  # a simulated board plays its samples for as long as it runs
        cfg["max_windows"] = 0
    files[CONFIG_PATH] = (json.dumps(cfg, indent=1, sort_keys=True) + "\n").encode()
    files["secrets.json"] = secrets_json(fleet, device, env)
    files["fleet_key.bin"] = fleet.public_key()
    files.update(ca_file(broker))
    if transport.fs_hashes(["version.json"]).get("version.json") is None:
        files["version.json"] = b'{"version": 0}'
    return DeployPlan(files=files, model=plan.model, config_source=plan.config_source,
                      arch=plan.arch)
