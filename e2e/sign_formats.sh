# Sourced (after `eval "$(bash e2e/sigtools.sh env)"`): sign an image already in a registry with
# the real new-format tools, offline (no Rekor, no Fulcio, no network beyond the registry).
#
#   sigfmt_keys DIR              cosign key pair DIR/cosign.{key,pub} (empty password) and a
#                                notation test certificate "trustgate-test" under DIR/notation
#                                (key + self-signed code-signing cert; also a `ca` trust store)
#   sigfmt_cosign_key DIR NAME   another cosign key pair DIR/NAME.{key,pub}
#   sigfmt_cosign_import DIR NAME ALG  a key made with openssl (ALG: ed25519, rsa, p256, p384, p521)
#                                imported into cosign as DIR/NAME.{key,pub}
#   sigfmt_cosign_bundle DIR REF [KEY]   cosign 3 default: a Sigstore bundle attached as referrer
#   sigfmt_cosign_legacy DIR REF [KEY]   legacy format: simple signing under the sha256-<hex>.sig tag
#   sigfmt_notation DIR REF jws|cose     a Notation signature (JWS or COSE envelope)
#
# REF is REGISTRY/REPOSITORY@sha256:<hex> (sign digests, never tags). KEY defaults to
# DIR/cosign.key. Set SIGFMT_PLAIN_HTTP=1 for a plain-HTTP registry, SIGFMT_CA=FILE for a TLS
# registry with a private CA, SIGFMT_USER/SIGFMT_PASSWORD for a registry that needs a login.
# The tools come from TRUSTGATE_COSIGN / TRUSTGATE_NOTATION (e2e/sigtools.sh env). Every
# function prints the tool's output only on failure and returns its status.

sigfmt_run() { # LOG CMD...: run quietly, show the log on failure
    local log=$1 rc=0
    shift
    "$@" >"$log" 2>&1 || rc=$?
    if ((rc != 0)); then
        echo "[sign_formats] failed ($rc): $*" >&2
        cat "$log" >&2
    fi
    return "$rc"
}

sigfmt_env() { # CMD...: with the CA, if any
    if [[ -n ${SIGFMT_CA:-} ]]; then
        SSL_CERT_FILE=$SIGFMT_CA "$@"
    else
        "$@"
    fi
}

sigfmt_cosign_key() {
    local dir=$1 name=$2
    mkdir -p "$dir"
    (cd "$dir" && COSIGN_PASSWORD='' sigfmt_run "$dir/$name.keygen.log" \
        "${TRUSTGATE_COSIGN:?run: eval \"\$(bash e2e/sigtools.sh env)\"}" \
        generate-key-pair --output-key-prefix "$name")
}

sigfmt_cosign_import() {
    local dir=$1 name=$2 alg=$3 gen
    mkdir -p "$dir"
    case $alg in
        ed25519) gen=(-algorithm ed25519) ;;
        rsa) gen=(-algorithm RSA -pkeyopt rsa_keygen_bits:2048) ;;
        p256 | p384 | p521) gen=(-algorithm EC -pkeyopt "ec_paramgen_curve:P-${alg#p}") ;;
        *)
            echo "[sign_formats] unknown key algorithm $alg" >&2
            return 2
            ;;
    esac
    sigfmt_run "$dir/$name.openssl.log" openssl genpkey "${gen[@]}" -out "$dir/$name.pem" &&
        (cd "$dir" && COSIGN_PASSWORD='' sigfmt_run "$dir/$name.import.log" "${TRUSTGATE_COSIGN:?}" \
            import-key-pair --key "$name.pem" --output-key-prefix "$name" -y)
}

sigfmt_keys() {
    local dir=$1
    mkdir -p "$dir/notation"
    [[ -f $dir/cosign.key ]] || sigfmt_cosign_key "$dir" cosign || return
    [[ -f $dir/notation/notation/localkeys/trustgate-test.crt ]] ||
        XDG_CONFIG_HOME=$dir/notation sigfmt_run "$dir/notation-keygen.log" \
            "${TRUSTGATE_NOTATION:?run: eval \"\$(bash e2e/sigtools.sh env)\"}" \
            cert generate-test --default trustgate-test
}

sigfmt_cosign() { # DIR REF KEY EXTRA...
    local dir=$1 ref=$2 key=$3
    shift 3
    local args=(sign --key "$key" --use-signing-config=false --tlog-upload=false -y
        --allow-insecure-registry)
    [[ ${SIGFMT_PLAIN_HTTP:-} == 1 ]] && args+=(--allow-http-registry)
    [[ -n ${SIGFMT_USER:-} ]] &&
        args+=(--registry-username "$SIGFMT_USER" --registry-password "${SIGFMT_PASSWORD:-}")
    COSIGN_PASSWORD='' sigfmt_env sigfmt_run "$dir/cosign-sign.log" \
        "${TRUSTGATE_COSIGN:?}" "${args[@]}" "$@" "$ref"
}

sigfmt_cosign_bundle() { sigfmt_cosign "$1" "$2" "${3:-$1/cosign.key}"; }

sigfmt_cosign_legacy() { sigfmt_cosign "$1" "$2" "${3:-$1/cosign.key}" --new-bundle-format=false; }

sigfmt_notation() {
    local dir=$1 ref=$2 format=${3:-jws}
    local args=(sign --signature-format "$format" --key trustgate-test)
    [[ ${SIGFMT_PLAIN_HTTP:-} == 1 ]] && args+=(--insecure-registry)
    [[ -n ${SIGFMT_USER:-} ]] && args+=(--username "$SIGFMT_USER" --password "${SIGFMT_PASSWORD:-}")
    XDG_CONFIG_HOME=$dir/notation sigfmt_env sigfmt_run "$dir/notation-sign.log" \
        "${TRUSTGATE_NOTATION:?}" "${args[@]}" "$ref"
}
