"""`python -m robustgen ...`: the Hydra training app (see robustgen/train.py and conf/train.yaml)."""
from robustgen.train import main

if __name__ == "__main__":
    main()
