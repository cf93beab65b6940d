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
    # A fleet member: MQTT session and OTA (net/node.py). A received update leaves the app's
    # loop; the app's modules leave the heap (the runtime stays: on an ESP32 viper code is not
    # freed until reset), the bundle is verified, swapped in and self-tested, and the app starts
    # again on the new model with the same MQTT session.
    import sys

    from net import node

    fleet = node.boot(cfg)
    while True:
        import app

        app.publish = fleet.publish
        try:
            app.main(cfg)
            break
        except node.Restart:
            app = None
            for name in list(sys.modules):
                if not name.startswith(("net", "elrt")):
                    del sys.modules[name]
            fleet.apply_update()
            cfg = _config()
    fleet.flush()
else:
    import app

    app.main(cfg)
