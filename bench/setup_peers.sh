#!/usr/bin/env bash
# Install the benchmark peers of bench/pdf_bench.py:
#   Ghostscript, qpdf, pngquant, jpegoptim, optipng, gifsicle (the last four for
#   bench/image_bench.py; + jbig2enc where the distribution has it) from Debian's
#   packages, and ocrmypdf in its own virtualenv at bench/.peers/venv (it is a peer, never a
#   dependency of Squeezer). ocrmypdf checks for tesseract at startup even with --skip-text,
#   so tesseract-ocr (+ the English data) is installed too.
# Idempotent; run as root (or with sudo available). Missing optional pieces only warn.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
peers="$here/.peers"
sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi

if command -v apt-get >/dev/null; then
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        ghostscript qpdf pngquant jpegoptim optipng gifsicle tesseract-ocr tesseract-ocr-eng python3-venv
    # jbig2enc lets ocrmypdf --optimize 3 re-encode bitonal images as JBIG2; not every
    # distribution release packages it, so it is optional.
    for pkg in jbig2enc jbig2; do
        if apt-cache show "$pkg" >/dev/null 2>&1; then
            $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" || true
            break
        fi
    done
    command -v jbig2 >/dev/null || echo "note: jbig2enc not available; ocrmypdf runs without JBIG2" >&2
else
    echo "warning: no apt-get; install ghostscript, qpdf, pngquant and tesseract yourself" >&2
fi

python="${PYTHON:-python3}"
if [ ! -x "$peers/venv/bin/ocrmypdf" ]; then
    mkdir -p "$peers"
    "$python" -m venv "$peers/venv"
    PIP_DISABLE_PIP_VERSION_CHECK=1 "$peers/venv/bin/pip" install -q --upgrade pip
    PIP_DISABLE_PIP_VERSION_CHECK=1 "$peers/venv/bin/pip" install -q ocrmypdf
fi

first_line() { local out; out="$("$@" 2>&1)" && printf '%s\n' "${out%%$'\n'*}" || echo missing; }
echo "peers:"
echo "  gs        $(first_line gs --version)"
echo "  qpdf      $(first_line qpdf --version)"
echo "  pngquant  $(first_line pngquant --version)"
echo "  jpegoptim $(first_line jpegoptim --version)"
echo "  optipng   $(first_line optipng --version)"
echo "  gifsicle  $(first_line gifsicle --version)"
echo "  jbig2     $(command -v jbig2 >/dev/null && echo present || echo 'missing (optional)')"
echo "  tesseract $(first_line tesseract --version)"
echo "  ocrmypdf  $(first_line "$peers/venv/bin/ocrmypdf" --version)"
