#!/usr/bin/env bash
# Run here, before a device session: gathers into .gpu-kit/ (ignored by git) what the GPU
# machine's image lacks for `newstopic benchmark` on JAX: the wheels of the packages below,
# and the 20 Newsgroups archive. That machine has Python 3.12 with JAX (CUDA),
# NumPy, SciPy, scikit-learn, matplotlib, rich and typer, no network and no TensorFlow;
# scripts/gpu_benchmark.sh installs the wheels there (docs/development.md).
set -euo pipefail
cd "$(dirname "$0")/.."
KIT=.gpu-kit
# keras and its needs, gensim (word vectors), skops (classical artifacts) and the web service's
# packages, which the command line imports, and typer with its click; the versions `make test`
# installs
WHEELS=(keras==3.15.1 namex==0.1.0 optree==0.20.0 gensim==4.4.0 smart_open==9.0.4 skops==0.16.0
        prettytable==3.19.0 wcwidth==0.9.5 fastapi==0.165.0 starlette==1.10.0 pydantic==2.14.4
        pydantic_core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5 uvicorn==0.55.0
        h11==0.16.0 click==8.5.1 typer==0.29.2)
ARCHIVE=${NEWSTOPIC_DATA:-../shared/data/20news-bydate.tar.gz}
[ -f "$ARCHIVE" ] || {
    echo "gpu_kit.sh: no 20 Newsgroups archive at $ARCHIVE: set NEWSTOPIC_DATA" >&2; exit 2; }
rm -rf "$KIT" && mkdir -p "$KIT/whl" "$KIT/data"
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d "$KIT/whl" "${WHEELS[@]}"
cp "$ARCHIVE" "$KIT/data/20news-bydate.tar.gz"
du -sh "$KIT"
