using System.Net;

namespace Escrow.Silo;

/// <summary>
/// Our silo settings (section "Silo"; not "Orleans", which Orleans reads itself as provider configuration). Read once
/// when the silo is built, before the host's services exist, so <see cref="Read"/> checks them there.
/// </summary>
public sealed class SiloOptions
{
    public const string Section = "Silo";

    /// <summary>"AdoNet" joins a cluster whose membership lives in PostgreSQL; anything else is one silo on localhost.</summary>
    public string? Clustering { get; set; }

    public bool IsAdoNetCluster => string.Equals(Clustering, "AdoNet", StringComparison.OrdinalIgnoreCase);

    public string ClusterId { get; set; } = "escrow";

    public string ServiceId { get; set; } = "escrow";

    public int SiloPort { get; set; } = 11111;

    public int GatewayPort { get; set; } = 30000;

    /// <summary>Listen on every interface rather than the advertised address alone (a container's private network).</summary>
    public bool ListenOnAnyHostAddress { get; set; }

    /// <summary>The IP address a cluster member advertises and listens on; unset: this host's first non-loopback one.</summary>
    public string? AdvertisedAddress { get; set; }

    /// <summary>The earlier name of <see cref="AdvertisedAddress"/>, still read.</summary>
    public string? AdvertisedIPAddress { get; set; }

    public string? EffectiveAdvertisedAddress => AdvertisedAddress ?? AdvertisedIPAddress;

    public TimeSpan ReminderMinimumPeriod { get; set; } = TimeSpan.FromMinutes(1);

    public TimeSpan ReminderRefreshPeriod { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>How long an idle escrow activation stays in memory (see <see cref="EscrowHosting.AddEscrow"/>).</summary>
    public TimeSpan EscrowCollectionAge { get; set; } = TimeSpan.FromMinutes(2);

    public SiloTlsOptions Tls { get; set; } = new();

    /// <summary>Binds the section and refuses a setting the validator refuses, naming it.</summary>
    public static SiloOptions Read(IConfigurationSection section)
    {
        Iso8601TimeSpanConverter.Register();
        var options = new SiloOptions();
        section.Bind(options);
        // One value with several thumbprints (an environment variable) as well as a list.
        if (section.GetSection("Tls:TrustedThumbprints").Value is { } single)
        {
            options.Tls.TrustedThumbprints = [.. single.Split([',', ' ', ';'],
                StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)];
        }
        var result = new SiloOptionsValidator().Validate(null, options);
        return result.Failed ? throw new OptionsValidationException(Section, typeof(SiloOptions), result.Failures) : options;
    }
}

/// <summary>Mutual TLS between silos (section "Silo:Tls"), on when <see cref="CertificatePath"/> names a PKCS#12 file.</summary>
public sealed class SiloTlsOptions
{
    public string? CertificatePath { get; set; }

    public string? CertificatePassword { get; set; }

    /// <summary>SHA-256 thumbprints of the other certificates a peer may present besides this silo's own.</summary>
    public List<string?> TrustedThumbprints { get; set; } = [];

    public bool IsOn => !string.IsNullOrWhiteSpace(CertificatePath);

    /// <summary>A thumbprint as compared: colons left out.</summary>
    public static string Normalized(string? thumbprint) => (thumbprint ?? "").Replace(":", "", StringComparison.Ordinal).Trim();
}

/// <summary>What is checked of the Silo section: only what the silo reads in its configuration.</summary>
public sealed class SiloOptionsValidator : IValidateOptions<SiloOptions>
{
    public ValidateOptionsResult Validate(string? name, SiloOptions o)
    {
        var advertised = o.EffectiveAdvertisedAddress;
        var thumbprints = o.Tls.TrustedThumbprints;
        var untrustable = thumbprints.FindIndex(t => SiloTlsOptions.Normalized(t) is not { Length: 64 } hex || !hex.All(Uri.IsHexDigit));
        return new OptionsErrors()
            .If(o.IsAdoNetCluster && !string.IsNullOrWhiteSpace(advertised) && !IPAddress.TryParse(advertised, out _),
                $"Silo:AdvertisedAddress must be an IP address (e.g. 10.0.0.5, or 127.0.0.1 for a cluster on one machine), not "
                    + $"'{advertised}'.")
            .If(o.Tls.IsOn && untrustable >= 0,
                $"Silo:Tls:TrustedThumbprints holds '{(untrustable >= 0 ? thumbprints[untrustable] : null)}', not a SHA-256 thumbprint "
                    + $"(64 hexadecimal digits).")
            .Result();
    }
}
