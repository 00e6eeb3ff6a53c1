#!/usr/bin/python3
"""Writes tests/unit/proto/px_cert_fixtures.h, the certificates and
certificate requests test_px_cert.c reads (cmocka tests cannot run openssl).

Certificates with ordinary names come from the openssl commands printed in
the header; the ones with hostile names (UTF-8, BMPString, UniversalString,
control characters, CR/LF, NUL, RFC 4514 specials, multi-valued RDNs, an
unknown attribute type, dates in 1950 and after 2050) from
python3-cryptography, which lets a test put any bytes in a name.
The expected subject and issuer strings are what
`openssl x509 -noout -subject -issuer -nameopt RFC2253` prints: an oracle
independent of the code under test. Re-running makes new keys, so the
header changes; the tests only compare against what it says.
Usage: /usr/bin/python3 tests/unit/proto/make_px_cert_fixtures.py"""
import datetime
import hashlib
import os
import subprocess
import tempfile

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "px_cert_fixtures.h")
TMP = tempfile.mkdtemp()
UTC = datetime.timezone.utc


def sh(cmd, stdin=None):
    return subprocess.run(cmd, shell=True, check=True, cwd=TMP, input=stdin,
                          capture_output=True).stdout


def c_str(s):
    if isinstance(s, bytes):
        s = s.decode("ascii")
    out = []
    for line in s.splitlines(keepends=True):
        esc = line.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        out.append('"%s"' % esc)
    return "\n    ".join(out) if out else '""'


def openssl_view(pem):
    """subject, issuer (RFC 2253 form) as openssl prints them."""
    with open(os.path.join(TMP, "view.pem"), "wb") as f:
        f.write(pem)
    text = sh("openssl x509 -in view.pem -noout -subject -issuer -nameopt RFC2253").decode()
    subj = iss = None
    for line in text.splitlines():
        if line.startswith("subject="):
            subj = line[len("subject="):]
        elif line.startswith("issuer="):
            iss = line[len("issuer="):]
    return subj, iss


certs = []  # (name, command, pem, is_ca, cn)


def add_cert(name, how, pem, is_ca, cn):
    certs.append((name, how, pem, is_ca, cn))


# ---- ordinary certificates made by openssl ----
sh("openssl ecparam -name prime256v1 -genkey -noout -out ca.key")
cmd_ca = ("openssl req -x509 -new -key ca.key -sha256 -days 3650 -subj '/O=Home/CN=Home CA' "
          "-addext basicConstraints=critical,CA:TRUE -out ca.pem")
sh(cmd_ca)
add_cert("openssl_ca", cmd_ca, open(os.path.join(TMP, "ca.pem"), "rb").read(), 1, "Home CA")

sh("openssl ecparam -name prime256v1 -genkey -noout -out leaf.key")
sh("openssl req -new -key leaf.key -subj '/C=DE/O=Home/OU=Devices/CN=phone' -out leaf.csr")
with open(os.path.join(TMP, "leaf.ext"), "w") as f:
    f.write("basicConstraints=critical,CA:FALSE\nextendedKeyUsage=clientAuth\n")
cmd_leaf = ("openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -set_serial 0x00ff0102 "
            "-days 30 -sha256 -extfile leaf.ext -out leaf.pem")
sh(cmd_leaf)
add_cert("openssl_leaf", cmd_leaf, open(os.path.join(TMP, "leaf.pem"), "rb").read(), 0, "phone")

cmd_rsa = ("openssl req -x509 -newkey rsa:2048 -nodes -keyout rsa.key -sha256 -days 365 "
           "-subj '/DC=org/DC=example/CN=RSA Root' -out rsa.pem")
sh(cmd_rsa)
add_cert("openssl_rsa_ca", cmd_rsa, open(os.path.join(TMP, "rsa.pem"), "rb").read(), 1,
         "RSA Root")

# ---- hostile names and far dates, made with python3-cryptography ----
ca_key = ec.generate_private_key(ec.SECP256R1())
ca_name = x509.Name([
    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Caf\u00e9 \u03a9 CA"),
    x509.NameAttribute(NameOID.COMMON_NAME, "root\r\nInjected: header"),
])
leaf_key = ec.generate_private_key(ec.SECP256R1())


def make(subject, serial, nb, na, ca=None, issuer=ca_name):
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
         .public_key(leaf_key.public_key()).serial_number(serial)
         .not_valid_before(nb).not_valid_after(na))
    if ca is not None:
        b = b.add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    return b.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def attr(oid, value, t=None):
    return x509.NameAttribute(oid, value, _type=t) if t else x509.NameAttribute(oid, value)


hostile = x509.Name([
    x509.RelativeDistinguishedName([attr(NameOID.COUNTRY_NAME, "DE")]),
    x509.RelativeDistinguishedName([attr(NameOID.ORGANIZATION_NAME, "\u00dcn\u00efc\u00f6d\u00e9 \u65e5\u672c")]),
    x509.RelativeDistinguishedName([attr(NameOID.ORGANIZATIONAL_UNIT_NAME, ', + " \\ < > ; = x')]),
    x509.RelativeDistinguishedName([attr(NameOID.ORGANIZATIONAL_UNIT_NAME, "#hash")]),
    x509.RelativeDistinguishedName([attr(NameOID.ORGANIZATIONAL_UNIT_NAME, " spaced ")]),
    x509.RelativeDistinguishedName([attr(NameOID.LOCALITY_NAME, "line1\r\nline2")]),
    x509.RelativeDistinguishedName([attr(NameOID.STATE_OR_PROVINCE_NAME, "nul\x00byte\x01ctl\x1bdel\x7f")]),
    x509.RelativeDistinguishedName([attr(NameOID.ORGANIZATIONAL_UNIT_NAME, "bmp \u00fc\u20ac", _ASN1Type.BMPString)]),
    x509.RelativeDistinguishedName([attr(NameOID.ORGANIZATIONAL_UNIT_NAME, "univ \u00e9", _ASN1Type.UniversalString)]),
    x509.RelativeDistinguishedName([attr(NameOID.DOMAIN_COMPONENT, "example")]),
    x509.RelativeDistinguishedName([attr(NameOID.EMAIL_ADDRESS, "a@b.example")]),
    x509.RelativeDistinguishedName([attr(x509.ObjectIdentifier("1.2.3.4"), "unknown")]),
    x509.RelativeDistinguishedName([attr(NameOID.COMMON_NAME, "multi"), attr(NameOID.USER_ID, "u1")]),
    x509.RelativeDistinguishedName([attr(NameOID.COMMON_NAME, 'phone, "the" one\\')]),
])
how_py = "python3-cryptography (make_px_cert_fixtures.py)"
add_cert("hostile_names",
         how_py + ": hostile subject and issuer, 1950-01-01 (UTCTime 50 is 1950) to 2060 (GeneralizedTime)",
         make(hostile, 0xff00000000000000000000000000000001,
              datetime.datetime(1950, 1, 1, 0, 0, 0, tzinfo=UTC),
              datetime.datetime(2060, 2, 29, 12, 0, 0, tzinfo=UTC)), 0, 'phone, "the" one\\5C')
add_cert("utc_boundary",
         how_py + ": 2049-12-31T23:59:59Z (UTCTime) to 2050-01-01T00:00:00Z (GeneralizedTime), "
         "serial 1, CA:TRUE",
         make(x509.Name([attr(NameOID.COMMON_NAME, "boundary")]), 1,
              datetime.datetime(2049, 12, 31, 23, 59, 59, tzinfo=UTC),
              datetime.datetime(2050, 1, 1, 0, 0, 0, tzinfo=UTC), ca=True), 1, "boundary")
add_cert("empty_subject",
         how_py + ": an empty subject, CA:FALSE, 1970 to 2038",
         make(x509.Name([]), 0x7f,
              datetime.datetime(1970, 1, 1, 0, 0, 0, tzinfo=UTC),
              datetime.datetime(2038, 1, 19, 3, 14, 8, tzinfo=UTC), ca=False), 0, "")

add_cert("expired",
         how_py + ": expired in 2001 (px_cert only reads: still parsed)",
         make(x509.Name([attr(NameOID.COMMON_NAME, "old")]), 0x0100,
              datetime.datetime(2000, 1, 1, 0, 0, 0, tzinfo=UTC),
              datetime.datetime(2001, 1, 1, 0, 0, 0, tzinfo=UTC)), 0, "old")

# ---- certificate requests ----
csrs = []  # (name, command, pem, pub_pem or None, cn or None)


def add_csr(name, cmd, keyfile=None, cn=None):
    sh(cmd)
    pem = open(os.path.join(TMP, name + ".csr"), "rb").read()
    pub = sh("openssl req -in %s.csr -noout -pubkey" % name) if keyfile else None
    csrs.append((name, cmd, pem, pub, cn))


add_csr("csr_p256",
        "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout p256.key "
        "-subj '/O=Home/CN=laptop' -out csr_p256.csr", "p256.key", "laptop")
add_csr("csr_p256_sha384",
        "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout p256b.key "
        "-sha384 -subj '/CN=tablet/O=Home' -out csr_p256_sha384.csr", "p256b.key", "tablet")
add_csr("csr_no_cn",
        "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout p256c.key "
        "-subj '/O=Home/OU=No Name' -out csr_no_cn.csr", "p256c.key", "")
add_csr("csr_p384",
        "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes -keyout p384.key "
        "-subj '/CN=p384' -out csr_p384.csr")
add_csr("csr_rsa",
        "openssl req -new -newkey rsa:2048 -nodes -keyout rsa2.key -subj '/CN=rsa' "
        "-out csr_rsa.csr")
add_csr("csr_ed25519",
        "openssl req -new -newkey ed25519 -nodes -keyout ed.key -subj '/CN=ed' "
        "-out csr_ed25519.csr")


def tamper(pem, old, new):
    """Changes bytes inside the DER (the same length, so it stays well formed)."""
    import base64
    body = b"".join(pem.split(b"\n")[1:-2])
    der = base64.b64decode(body)
    assert der.count(old) == 1 and len(old) == len(new)
    der = der.replace(old, new)
    b64 = base64.b64encode(der)
    lines = [b64[i:i + 64] for i in range(0, len(b64), 64)]
    return (b"-----BEGIN CERTIFICATE REQUEST-----\n" + b"\n".join(lines) +
            b"\n-----END CERTIFICATE REQUEST-----\n")


p256 = csrs[0][2]
csr_tampered_subject = tamper(p256, b"laptop", b"laptoq")


def flip_last_sig_byte(pem):
    import base64
    body = b"".join(pem.split(b"\n")[1:-2])
    der = bytearray(base64.b64decode(body))
    der[-1] ^= 0x01
    b64 = base64.b64encode(bytes(der))
    lines = [b64[i:i + 64] for i in range(0, len(b64), 64)]
    return (b"-----BEGIN CERTIFICATE REQUEST-----\n" + b"\n".join(lines) +
            b"\n-----END CERTIFICATE REQUEST-----\n")


csr_tampered_sig = flip_last_sig_byte(p256)

# ---- the header ----
o = []
o.append("/* Generated by make_px_cert_fixtures.py: do not edit. See that script for")
o.append(" * how each fixture was made. Expected subject/issuer strings are openssl's")
o.append(" * `x509 -noout -subject -issuer -nameopt RFC2253` output. */")
o.append("#ifndef PX_CERT_FIXTURES_H")
o.append("#define PX_CERT_FIXTURES_H")
o.append("")
o.append("struct cert_fixture {")
o.append("    const char *name;")
o.append("    const char *pem;")
o.append("    const char *subject, *issuer; /* openssl -nameopt RFC2253 */")
o.append("    const char *cn;               /* NULL: checked by hand in the test */")
o.append("    const char *serial;           /* lower-case hex */")
o.append("    const char *sha256;")
o.append("    long long not_before, not_after;")
o.append("    int is_ca;")
o.append("};")
o.append("")
o.append("static const struct cert_fixture cert_fixtures[] = {")
for name, how, pem, is_ca, cn in certs:
    cert = x509.load_pem_x509_certificate(pem)
    subj, iss = openssl_view(pem)
    der = cert.public_bytes(serialization.Encoding.DER)
    o.append("    /* %s: %s */" % (name, how.replace("*/", "* /")))
    o.append("    {%s," % c_str(name))
    o.append("     %s," % c_str(pem))
    o.append("     %s," % c_str(subj))
    o.append("     %s," % c_str(iss))
    o.append("     %s," % c_str(cn))
    serial = "%x" % cert.serial_number
    o.append('     "%s",' % ("0" * (len(serial) % 2) + serial))  # whole bytes
    o.append('     "%s",' % hashlib.sha256(der).hexdigest())
    o.append("     %dLL, %dLL, %d}," % (int(cert.not_valid_before.replace(tzinfo=UTC).timestamp()),
                                         int(cert.not_valid_after.replace(tzinfo=UTC).timestamp()), is_ca))
o.append("};")
o.append("")
for name, cmd, pem, pub, cn in csrs:
    o.append("/* %s: %s */" % (name, cmd))
    o.append("static const char %s[] =\n    %s;" % (name, c_str(pem)))
    if pub is not None:
        o.append("static const char %s_pub[] =\n    %s;" % (name, c_str(pub)))
        o.append("static const char %s_cn[] = %s;" % (name, c_str(cn)))
o.append("/* csr_p256 with the subject's CN changed (laptop -> laptoq) after signing. */")
o.append("static const char csr_tampered_subject[] =\n    %s;" % c_str(csr_tampered_subject))
o.append("/* csr_p256 with the last byte of its signature flipped. */")
o.append("static const char csr_tampered_sig[] =\n    %s;" % c_str(csr_tampered_sig))
o.append("")
o.append("#endif")
with open(OUT, "w") as f:
    f.write("\n".join(o) + "\n")
print("wrote", OUT)
