using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Escrow.Tests.Hosting;

/// <summary>The Silo section: read with its defaults, and refused at start with a message that names the setting.</summary>
public sealed class SiloOptionsTests
{
    private static IConfiguration Configuration(params (string Key, string? Value)[] values) =>
        new ConfigurationBuilder().AddInMemoryCollection(values.Select(v => KeyValuePair.Create(v.Key, v.Value))).Build();

    [Fact]
    public void An_advertised_address_that_is_not_an_ip_stops_a_cluster_member_at_start()
    {
        var configuration = Configuration(
            ("ConnectionStrings:Escrow", "Host=127.0.0.1;Database=never-opened"),
            ("Silo:Clustering", "AdoNet"),
            ("Silo:AdvertisedAddress", "silo-1.internal"));

        var error = Assert.Throws<OptionsValidationException>(() =>
            Host.CreateDefaultBuilder().UseOrleans(s => s.AddEscrow(configuration)).Build());

        Assert.Contains("Silo:AdvertisedAddress must be an IP address", error.Message, StringComparison.Ordinal);
        Assert.Contains("'silo-1.internal'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_section_is_read_with_its_defaults_and_its_earlier_names()
    {
        var defaults = SiloOptions.Read(Configuration().GetSection(SiloOptions.Section));
        Assert.Equal((11111, 30000, "escrow", "escrow"), (defaults.SiloPort, defaults.GatewayPort, defaults.ClusterId, defaults.ServiceId));
        Assert.Equal((TimeSpan.FromMinutes(1), TimeSpan.FromMinutes(5), TimeSpan.FromMinutes(2)),
            (defaults.ReminderMinimumPeriod, defaults.ReminderRefreshPeriod, defaults.EscrowCollectionAge));
        Assert.False(defaults.IsAdoNetCluster);

        var set = SiloOptions.Read(Configuration(
            ("Silo:Clustering", "adonet"), ("Silo:AdvertisedIPAddress", "10.0.0.5"), ("Silo:ReminderMinimumPeriod", "PT2S"))
            .GetSection(SiloOptions.Section));
        Assert.True(set.IsAdoNetCluster);
        Assert.Equal("10.0.0.5", set.EffectiveAdvertisedAddress);
        Assert.Equal(TimeSpan.FromSeconds(2), set.ReminderMinimumPeriod);
    }

    [Fact]
    public void Trusted_thumbprints_are_read_from_one_value_as_from_a_list()
    {
        var (a, b) = (new string('A', 64), string.Join(':', Enumerable.Repeat("0b", 32)));
        var single = SiloOptions.Read(Configuration(("Silo:Tls:TrustedThumbprints", $"{a}, {b}")).GetSection(SiloOptions.Section));
        var listed = SiloOptions.Read(Configuration(("Silo:Tls:TrustedThumbprints:0", a), ("Silo:Tls:TrustedThumbprints:1", b))
            .GetSection(SiloOptions.Section));

        Assert.Equal([a, b], single.Tls.TrustedThumbprints);
        Assert.Equal([a, b], listed.Tls.TrustedThumbprints);
    }
}
