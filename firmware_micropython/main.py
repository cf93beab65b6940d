# Board entry point: read config.json, then run the standalone app or the HIL bench's agent.
import json


def _config():
    try:
        with open("config.json") as f:
            return json.load(f)
    except (OSError, ValueError) as exc:
        print('{"event": "config_error", "detail": "%s"}' % exc)
        return {}


cfg = _config()
if cfg.get("mode", "standalone") == "hil":
    import hil

    hil.main(cfg)
elif cfg.get("fleet"):
    # A fleet member: MQTT session and OTA (net/node.py). A received update is checked and
    # swapped in at boot, before the app takes the heap; the app's loop ends with a reset.
    from net import node

    fleet = node.boot(cfg)
    import app

    app.publish = fleet.publish
    try:
        app.main(cfg)
    except node.Restart:
        fleet.reset()
    except Exception as exc:  # noqa: BLE001 - a new model the app cannot run rolls back
        fleet.app_failed(exc)
    fleet.flush()
else:
    import app

    app.main(cfg)
