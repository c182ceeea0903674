"""The RetinaLogos Space: the demo of retinalogos-hub's zoo (the same UI as `retinalogos app`)."""

from retinalogos_hub.space import launch

if __name__ == "__main__":
    launch()
