using Escrow.Api.Hosting;
using Microsoft.Extensions.Configuration;

namespace Escrow.Tests.Hosting;

/// <summary>Which storage a run with no connection string gets; the local cluster itself is run in LocalRunTests.</summary>
public sealed class LocalStorageTests
{
    [Fact]
    public async Task Live_mode_without_a_connection_string_never_starts_a_local_cluster()
    {
        var directory = Path.Combine(Path.GetTempPath(), "escrow-live-local-" + Guid.NewGuid().ToString("N")[..8]);
        var configuration = Configuration(("Stripe:SecretKey", "sk_live_" + new string('x', 30)), (LocalStorage.DataDirectoryKey, directory));

        var storage = await LocalStorage.PrepareAsync(configuration);

        Assert.Null(storage.Cluster);
        Assert.Null(storage.SecretsFile);
        Assert.False(Directory.Exists(directory), $"{directory} was created in live mode");
        Assert.True(string.IsNullOrEmpty(configuration.GetConnectionString("Escrow")), "live mode was given a connection string of its own");
    }

    [Theory]
    [InlineData("InMemory")]
    [InlineData("inmemory")]
    public async Task Storage_InMemory_keeps_state_in_memory_even_where_postgres_is_installed(string value)
    {
        var directory = Path.Combine(Path.GetTempPath(), "escrow-inmemory-" + Guid.NewGuid().ToString("N")[..8]);
        var configuration = Configuration((LocalStorage.StorageKey, value), (LocalStorage.DataDirectoryKey, directory));

        var storage = await LocalStorage.PrepareAsync(configuration);

        Assert.Null(storage.Cluster);
        Assert.False(Directory.Exists(directory));
        Assert.Contains("IN MEMORY (Escrow:Storage=InMemory)", storage.Describe(configuration), StringComparison.Ordinal);
    }

    private static ConfigurationManager Configuration(params (string Key, string Value)[] settings)
    {
        var configuration = new ConfigurationManager();
        configuration.AddInMemoryCollection(settings.ToDictionary(s => s.Key, s => (string?)s.Value));
        return configuration;
    }
}
