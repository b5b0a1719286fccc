using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Orleans.Configuration;
using Orleans.Connections.Security;

namespace Escrow.Silo;

/// <summary>
/// Where a clustered silo listens and how silos authenticate each other. Silo and gateway ports carry grain calls
/// without any key check of ours, so they belong on a private network: they listen on the advertised address only
/// (never on every interface unless <c>Silo:ListenOnAnyHostAddress</c>), and with <c>Silo:Tls:CertificatePath</c>
/// every connection is mutual TLS, accepted only from a peer whose certificate is pinned.
/// </summary>
public static class SiloNetwork
{
    /// <summary>Binds the silo and gateway ports of an <c>AdoNet</c> cluster member.</summary>
    public static ISiloBuilder UseClusterEndpoints(this ISiloBuilder silo, SiloOptions options)
    {
        var advertised = options.EffectiveAdvertisedAddress;
        if (string.IsNullOrWhiteSpace(advertised))
        {
            // Orleans picks this host's first non-loopback address and listens on it alone.
            return silo.ConfigureEndpoints(siloPort: options.SiloPort, gatewayPort: options.GatewayPort, listenOnAnyHostAddress: options.ListenOnAnyHostAddress);
        }
        return silo.ConfigureEndpoints(IPAddress.Parse(advertised), options.SiloPort, options.GatewayPort, listenOnAnyHostAddress: options.ListenOnAnyHostAddress);
    }

    /// <summary>
    /// Mutual TLS on silo and gateway connections when <c>Silo:Tls:CertificatePath</c> names a PKCS#12 file. A peer
    /// must present a certificate whose SHA-256 thumbprint is this silo's own or one of
    /// <c>Silo:Tls:TrustedThumbprints</c>: pinning, not a public CA, decides who may join, and the list lets a new
    /// certificate be trusted everywhere before any silo uses it.
    /// </summary>
    public static ISiloBuilder UseClusterTls(this ISiloBuilder silo, SiloOptions options)
    {
        var tls = options.Tls;
        if (!tls.IsOn)
        {
            return silo;
        }
        var certificate = LoadCertificate(tls.CertificatePath!, tls.CertificatePassword);
        var trusted = new HashSet<string>(tls.TrustedThumbprints.Select(SiloTlsOptions.Normalized), StringComparer.OrdinalIgnoreCase) { Thumbprint(certificate) };
        return silo.UseTls(certificate, o =>
        {
            o.RemoteCertificateMode = RemoteCertificateMode.RequireCertificate;
            o.ClientCertificateMode = RemoteCertificateMode.RequireCertificate;
            o.RemoteCertificateValidation = (peer, _, _) => peer is not null && trusted.Contains(Thumbprint(peer));
        });
    }

    public static string Thumbprint(X509Certificate2 certificate) => certificate.GetCertHashString(HashAlgorithmName.SHA256);

    private static X509Certificate2 LoadCertificate(string path, string? password)
    {
        X509Certificate2 certificate;
        try
        {
            certificate = X509CertificateLoader.LoadPkcs12FromFile(path, password);
        }
        catch (Exception e) when (e is CryptographicException or IOException or UnauthorizedAccessException)
        {
            throw new OptionsValidationException(SiloOptions.Section, typeof(TlsOptions),
                [$"Silo:Tls:CertificatePath '{path}' could not be read as a PKCS#12 file with its private key ({e.Message}); check Silo:Tls:CertificatePassword."]);
        }
        if (!certificate.HasPrivateKey)
        {
            throw new OptionsValidationException(SiloOptions.Section, typeof(TlsOptions),
                [$"Silo:Tls:CertificatePath '{path}' holds no private key: a silo proves who it is with it."]);
        }
        return certificate;
    }
}
