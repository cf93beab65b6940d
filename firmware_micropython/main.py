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
else:
    import app

    app.main(cfg)
