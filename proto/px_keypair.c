#include "px_keypair.h"
#include "px_err.h"

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/openssl/bio.h>
#include <wolfssl/openssl/evp.h>
#include <wolfssl/openssl/pem.h>

#include <string.h>

/* Large enough for any signature wolfSSL makes here (RSA-8192 is 1024 bytes). */
#define SIG_MAX 1100

int px_keypair_check(const char *cert_pem, const char *key_pem)
{
    int rc = PX_ERR_INVAL;
    WOLFSSL_EVP_PKEY *key = NULL, *pub = NULL;
    WOLFSSL_EVP_MD_CTX *md = NULL;
    WOLFSSL_BIO *bio = NULL;
    /* Any message proves the key: the signature is made and checked here and
     * shown to no one, so the challenge need not be random. */
    static const unsigned char challenge[] = "px_keypair_check: does this key sign for the cert?";
    unsigned char sig[SIG_MAX];
    size_t sig_len = sizeof(sig);
    WOLFSSL_X509 *cert = wolfSSL_X509_load_certificate_buffer(
        (const unsigned char *)cert_pem, (int)strlen(cert_pem), WOLFSSL_FILETYPE_PEM);
    if (!cert)
        goto out;
    bio = wolfSSL_BIO_new_mem_buf(key_pem, (int)strlen(key_pem));
    if (!bio) {
        rc = PX_ERR_NOMEM;
        goto out;
    }
    key = wolfSSL_PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    if (!key)
        goto out;
    rc = PX_ERR_CRYPTO;
    pub = wolfSSL_X509_get_pubkey(cert);
    if (!pub)
        goto out;
    md = wolfSSL_EVP_MD_CTX_new();
    if (!md) {
        rc = PX_ERR_NOMEM;
        goto out;
    }
    if (wolfSSL_EVP_DigestSignInit(md, NULL, wolfSSL_EVP_sha256(), NULL, key) != WOLFSSL_SUCCESS ||
        wolfSSL_EVP_DigestSignUpdate(md, challenge, sizeof(challenge)) != WOLFSSL_SUCCESS ||
        wolfSSL_EVP_DigestSignFinal(md, sig, &sig_len) != WOLFSSL_SUCCESS)
        goto out;
    wolfSSL_EVP_MD_CTX_free(md);
    md = wolfSSL_EVP_MD_CTX_new();
    if (!md) {
        rc = PX_ERR_NOMEM;
        goto out;
    }
    /* A key of another type than the certificate's fails here too. */
    if (wolfSSL_EVP_DigestVerifyInit(md, NULL, wolfSSL_EVP_sha256(), NULL, pub) !=
            WOLFSSL_SUCCESS ||
        wolfSSL_EVP_DigestVerifyUpdate(md, challenge, sizeof(challenge)) != WOLFSSL_SUCCESS) {
        rc = PX_ERR_DENIED;
        goto out;
    }
    rc = wolfSSL_EVP_DigestVerifyFinal(md, sig, sig_len) == WOLFSSL_SUCCESS ? 0 : PX_ERR_DENIED;
out:
    if (md)
        wolfSSL_EVP_MD_CTX_free(md);
    wolfSSL_EVP_PKEY_free(pub);
    wolfSSL_EVP_PKEY_free(key);
    wolfSSL_BIO_free(bio);
    wolfSSL_X509_free(cert);
    return rc;
}
