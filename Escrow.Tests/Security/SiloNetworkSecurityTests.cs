using System.Net.NetworkInformation;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using Orleans.Configuration;
using Orleans.Runtime;

namespace Escrow.Tests.Security;

/// <summary>
/// The silo and gateway ports accept grain calls with no key check of ours: a host on the network that reaches them
/// must not get in. Two silos of the service's own configuration (<see cref="SiloNetwork"/>, AdoNet clustering on
/// PostgreSQL) with mutual TLS and pinned certificates; outsiders try the gateway as Orleans clients.
/// </summary>
public sealed class SiloNetworkSecurityTests : IAsyncLifetime
{
    private const string Password = "test-only-pfx-password";
    private readonly string _directory = Directory.CreateTempSubdirectory("escrow-silo-tls-").FullName;
    private readonly List<IHost> _hosts = [];
    private string _connectionString = "";
    private string _clusterId = "";

    public async Task InitializeAsync()
    {
        var server = await PostgresServer.GetAsync();
        _connectionString = await server.CreateDatabaseAsync("silotls");
        _clusterId = "tls-" + Guid.NewGuid().ToString("N")[..8];
    }

    public async Task DisposeAsync()
    {
        foreach (var host in Enumerable.Reverse(_hosts))
        {
            try
            {
                await host.StopAsync();
            }
            finally
            {
                host.Dispose();
            }
        }
        Directory.Delete(_directory, recursive: true);
    }

    [Fact]
    public async Task Silos_listen_on_the_advertised_address_only_and_trust_each_other_through_pinned_certificates()
    {
        var (first, second) = (NewCertificate("silo-a"), NewCertificate("silo-b"));
        // Rotation's middle step: each silo presents its own certificate and trusts the other's thumbprint.
        var a = await StartSiloAsync(first, trusted: second);
        var b = await StartSiloAsync(second, trusted: first);

        var hosts = await Eventually.UntilAsync(() => ActiveSilosAsync(first, a.Gateway), n => n == 2, "both silos to be active");
        Assert.Equal(2, hosts);

        var listeners = IPGlobalProperties.GetIPGlobalProperties().GetActiveTcpListeners();
        foreach (var port in new[] { a.SiloPort, a.Gateway, b.SiloPort, b.Gateway })
        {
            var bound = listeners.Where(l => l.Port == port).Select(l => l.Address).ToList();
            Assert.Equal([IPAddress.Loopback], bound);
        }
    }

    [Fact]
    public async Task An_orleans_client_without_tls_cannot_call_a_grain_through_the_gateway()
    {
        var cluster = NewCertificate("silo");
        var silo = await StartSiloAsync(cluster);

        await Assert.ThrowsAnyAsync<Exception>(() => ActiveSilosAsync(tls: null, silo.Gateway, failFast: true));
        Assert.Equal(1, await ActiveSilosAsync(cluster, silo.Gateway));
    }

    [Fact]
    public async Task An_orleans_client_with_its_own_self_signed_certificate_cannot_call_a_grain()
    {
        var cluster = NewCertificate("silo");
        var silo = await StartSiloAsync(cluster);

        await Assert.ThrowsAnyAsync<Exception>(() => ActiveSilosAsync(NewCertificate("silo"), silo.Gateway, failFast: true));
        Assert.Equal(1, await ActiveSilosAsync(cluster, silo.Gateway));
    }

    [Fact]
    public void A_trusted_thumbprint_that_is_not_sha256_stops_the_silo_at_start()
    {
        var cluster = NewCertificate("silo");
        var configuration = SiloConfiguration(cluster, trusted: null, PostgresServer.GetFreePort(), PostgresServer.GetFreePort(),
            extra: ("Silo:Tls:TrustedThumbprints", "ABCDEF"));

        var error = Assert.ThrowsAny<Microsoft.Extensions.Options.OptionsValidationException>(() =>
            Host.CreateDefaultBuilder().UseOrleans(s => s.UseClusterTls(Escrow.Silo.SiloOptions.Read(configuration.GetSection("Silo")))).Build());
        Assert.Contains("Silo:Tls:TrustedThumbprints", error.Message, StringComparison.Ordinal);
    }

    private async Task<(int SiloPort, int Gateway)> StartSiloAsync(string certificatePath, string? trusted = null)
    {
        var (siloPort, gateway) = (PostgresServer.GetFreePort(), PostgresServer.GetFreePort());
        var configuration = SiloConfiguration(certificatePath, trusted, siloPort, gateway);
        var section = Escrow.Silo.SiloOptions.Read(configuration.GetSection("Silo"));
        var host = Host.CreateDefaultBuilder()
            .UseOrleans(silo => silo
                .UseAdoNetClustering(o =>
                {
                    o.Invariant = "Npgsql";
                    o.ConnectionString = _connectionString;
                })
                .Configure<ClusterOptions>(o => (o.ClusterId, o.ServiceId) = (_clusterId, _clusterId))
                .UseClusterEndpoints(section)
                .UseClusterTls(section))
            .Build();
        _hosts.Add(host);
        await host.StartAsync();
        return (siloPort, gateway);
    }

    private IConfiguration SiloConfiguration(string certificatePath, string? trusted, int siloPort, int gateway,
        params (string Key, string Value)[] extra)
    {
        var values = new Dictionary<string, string?>
        {
            ["Silo:AdvertisedAddress"] = "127.0.0.1",
            ["Silo:SiloPort"] = siloPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Silo:GatewayPort"] = gateway.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Silo:Tls:CertificatePath"] = certificatePath,
            ["Silo:Tls:CertificatePassword"] = Password,
        };
        if (trusted is not null)
        {
            values["Silo:Tls:TrustedThumbprints:0"] = SiloNetwork.Thumbprint(X509CertificateLoader.LoadPkcs12FromFile(trusted, Password));
        }
        foreach (var (key, value) in extra)
        {
            values[key] = value;
        }
        return new ConfigurationBuilder().AddInMemoryCollection(values).Build();
    }

    /// <summary>How many silos the cluster reports active, asked through the gateway by a client with the cluster's certificate.</summary>
    private async Task<int> ActiveSilosAsync(string? tls, int gateway, bool failFast = false)
    {
        using var client = await ConnectClientAsync(gateway, tls, failFast);
        var management = client.Services.GetRequiredService<IClusterClient>().GetGrain<IManagementGrain>(0);
        var hosts = await management.GetHosts(onlyActive: true);
        return hosts.Count;
    }

    /// <summary>An Orleans client on the gateway: with <paramref name="tls"/> null it speaks plain TCP.</summary>
    private async Task<IHost> ConnectClientAsync(int gateway, string? tls, bool failFast)
    {
        var host = Host.CreateDefaultBuilder()
            .UseOrleansClient(client =>
            {
                client.UseStaticClustering(new IPEndPoint(IPAddress.Loopback, gateway))
                    .Configure<ClusterOptions>(o => (o.ClusterId, o.ServiceId) = (_clusterId, _clusterId));
                if (failFast)
                {
                    // An outsider's client gives up at once rather than retrying for minutes: the silo's answer is the same.
                    client.UseConnectionRetryFilter((_, _) => Task.FromResult(false))
                        .Configure<ConnectionOptions>(o => (o.OpenConnectionTimeout, o.ConnectionRetryDelay) = (TimeSpan.FromSeconds(5), TimeSpan.Zero))
                        .Configure<ClientMessagingOptions>(o => o.ResponseTimeout = TimeSpan.FromSeconds(10));
                }
                if (tls is not null)
                {
                    client.UseTls(X509CertificateLoader.LoadPkcs12FromFile(tls, Password), o =>
                    {
                        // The client trusts any silo: what is tested is whether the silo trusts the client.
                        o.AllowAnyRemoteCertificate();
                        o.OnAuthenticateAsClient = (_, ssl) => ssl.TargetHost = "escrow-silo";
                    });
                }
            })
            .Build();
        try
        {
            await host.StartAsync();
            return host;
        }
        catch
        {
            host.Dispose();
            throw;
        }
    }

    private string NewCertificate(string name)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN=escrow-{name}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
            [new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2")], critical: false));
        var now = DateTimeOffset.UtcNow;
        using var certificate = request.CreateSelfSigned(now.AddDays(-1), now.AddDays(1));
        var path = Path.Combine(_directory, $"{name}-{Guid.NewGuid():N}.pfx");
        File.WriteAllBytes(path, certificate.Export(X509ContentType.Pkcs12, Password));
        return path;
    }
}
