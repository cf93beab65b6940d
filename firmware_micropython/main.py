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
    # A fleet member: MQTT session and OTA (net/node.py). A verified update leaves the app's
    # loop, is swapped in and self-tested here, and the app starts again on the new model.
    import app
    from net import node

    fleet = node.boot(cfg)
    app.publish = fleet.publish
    while True:
        try:
            app.main(cfg)
            break
        except node.Restart:
            app._active = None
            fleet.apply_update()
            cfg = _config()
    fleet.flush()
else:
    import app

    app.main(cfg)
