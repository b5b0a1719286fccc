using System.Diagnostics;

namespace Escrow.Tests.Hosting;

/// <summary>
/// The published Escrow.Api with no configuration, as a newcomer runs it: state kept in a private PostgreSQL cluster
/// under .escrow-data/ of the working directory, so a restart loses nothing; a start-up a person can read.
/// </summary>
public sealed class LocalRunTests
{
    private static readonly Lazy<Task<string>> Published = new(PublishAsync);

    /// <summary>The API published from the build the tests run on (no rebuild: <c>--no-build</c>).</summary>
    private static async Task<string> PublishAsync()
    {
        var output = Path.Combine(Path.GetTempPath(), "escrow-published-" + Guid.NewGuid().ToString("N")[..8]);
        var configuration = ApiProcess.BuildConfiguration;
        var project = Path.Combine(ApiProcess.RepositoryRoot(), "Escrow.Api", "Escrow.Api.csproj");
        using var publish = Process.Start(new ProcessStartInfo("dotnet", ["publish", project, "--no-build", "-c", configuration, "-o", output, "-nologo", "-v", "q"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        })!;
        var stdout = publish.StandardOutput.ReadToEndAsync();
        var stderr = publish.StandardError.ReadToEndAsync();
        await publish.WaitForExitAsync();
        Assert.True(publish.ExitCode == 0, $"dotnet publish failed: {await stdout}{await stderr}");
        return Path.Combine(output, "Escrow.Api.dll");
    }

    [Fact]
    public async Task An_escrow_held_before_a_restart_is_held_after_it_and_a_reply_then_releases_it()
    {
        Assert.True(PostgresCluster.FindBinDirectory() is not null, PostgresCluster.NotFoundMessage);
        var dll = await Published.Value;
        var work = Directory.CreateTempSubdirectory("escrow-local-run-").FullName;
        // Readable by the postgres system user, which owns the cluster when the tests run as root.
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(work, (UnixFileMode)0b111_101_101);
        }
        Guid escrowId;
        string platformKey;
        await using (var first = await ApiProcess.StartAsync([dll], work))
        {
            AssertReadable(first);
            // No launch settings for the published app: a deployment's own environment, Production by default.
            Assert.Contains(first.StartupLines, l => l.StartsWith("Escrow API listening on", StringComparison.Ordinal) && l.EndsWith("(Production)", StringComparison.Ordinal));
            var storage = first.StartupLines.Single(l => l.StartsWith("  Storage", StringComparison.Ordinal));
            Assert.Contains($"Storage   PostgreSQL, private cluster in {Path.Combine(work, ".escrow-data")}", storage, StringComparison.Ordinal);
            // The container's health check (docker-compose.yml): the published app asks the running one.
            // Ready once the silo has joined and the store answers; compose retries it the same way.
            await Eventually.UntilAsync(async () => await HealthCheckAsync(dll, $"{first.Address}/health/ready") == 0, "the health check of the running API");
            platformKey = first.BannerValue("Platform API key");
            var platform = first.Client(platformKey);
            var recipient = "local-" + Guid.NewGuid().ToString("N")[..8];
            var put = await platform.PutAsJsonAsync($"/v1/recipients/{recipient}", new { email = $"{recipient}@example.com", displayName = "Dr. Lee", basePriceMinor = 2500, currency = "eur" });
            Assert.True(put.IsSuccessStatusCode, await put.Content.ReadAsStringAsync());
            var link = await (await platform.PostAsync($"/v1/recipients/{recipient}/onboarding-link", null)).Content.ReadFromJsonAsync<JsonElement>();
            var enable = await first.Client().PostAsync($"/_sandbox/stripe/accounts/{link.GetProperty("accountId").GetString()}/enable-payouts", null);
            Assert.True(enable.IsSuccessStatusCode, await enable.Content.ReadAsStringAsync());
            await Eventually.UntilAsync(async () => (await platform.GetFromJsonAsync<JsonElement>($"/v1/recipients/{recipient}")).GetProperty("payoutsEnabled").GetBoolean(), "payouts enabled");

            var create = new HttpRequestMessage(HttpMethod.Post, "/v1/escrows")
            {
                Content = JsonContent.Create(new { recipientId = recipient, senderEmail = "sam@example.com", responseWindow = "PT24H", subject = "Before the restart", message = "Is this kept across a restart of the service?", paymentMethodId = "pm_card_visa" }),
            };
            create.Headers.Add("Idempotency-Key", Guid.NewGuid().ToString());
            var created = await first.Client().SendAsync(create);
            Assert.True(created.StatusCode == HttpStatusCode.Created, await created.Content.ReadAsStringAsync());
            escrowId = (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();
            await Eventually.UntilAsync(async () => await StatusAsync(platform, escrowId) == "held", "the escrow held before the restart");
        }

        await using var second = await ApiProcess.StartAsync([dll], work);
        Assert.Equal(platformKey, second.BannerValue("Platform API key"));
        var again = second.Client(platformKey);
        Assert.Equal("held", await StatusAsync(again, escrowId));
        var reply = await again.PostAsJsonAsync($"/v1/escrows/{escrowId}/response", new { text = "Yes, it is." });
        Assert.True(reply.IsSuccessStatusCode, await reply.Content.ReadAsStringAsync());
        await Eventually.UntilAsync(async () => await StatusAsync(again, escrowId) == "released", "the escrow released after the restart");
        await second.StopAsync();
        Directory.Delete(work, recursive: true);
    }

    [Fact]
    public async Task Dotnet_run_prints_the_banner_last_with_no_Orleans_or_Polly_information_lines()
    {
        var work = ApiProcess.RepositoryRoot();
        var configuration = ApiProcess.BuildConfiguration;
        var api = await ApiProcess.StartAsync(["run", "--project", "Escrow.Api", "--no-build", "-c", configuration], work, new Dictionary<string, string> { ["Escrow__Storage"] = "InMemory" });
        try
        {
            Assert.Contains(api.Lines, l => l.Contains("Storage   IN MEMORY (Escrow:Storage=InMemory)", StringComparison.Ordinal));
            // Launch settings: dotnet run is a developer's run.
            Assert.Contains(api.Lines, l => l.StartsWith("Escrow API listening on", StringComparison.Ordinal) && l.EndsWith("(Development)", StringComparison.Ordinal));
            AssertReadable(api);
        }
        finally
        {
            await api.KillAsync();
        }
    }

    [Fact]
    public async Task Health_check_mode_fails_when_nothing_answers_and_starts_nothing()
    {
        var dll = await Published.Value;
        var work = Directory.CreateTempSubdirectory("escrow-health-").FullName;
        Assert.Equal(1, await HealthCheckAsync(dll, $"http://127.0.0.1:{PostgresServer.GetFreePort()}/health/ready", work));
        Assert.Empty(Directory.EnumerateFileSystemEntries(work));
        Directory.Delete(work);
    }

    /// <summary>The exit code of <c>dotnet Escrow.Api.dll --health-check url</c>.</summary>
    private static async Task<int> HealthCheckAsync(string dll, string url, string? workingDirectory = null)
    {
        var info = new ProcessStartInfo("dotnet", [dll, "--health-check", url]) { RedirectStandardOutput = true, RedirectStandardError = true };
        if (workingDirectory is not null)
        {
            info.WorkingDirectory = workingDirectory;
        }
        using var check = Process.Start(info)!;
        var output = check.StandardOutput.ReadToEndAsync();
        var error = check.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        await check.WaitForExitAsync(timeout.Token);
        await output;
        await error;
        return check.ExitCode;
    }

    private static void AssertReadable(ApiProcess api)
    {
        var lines = api.StartupLines;
        var banner = lines.ToList().FindLastIndex(l => l.StartsWith("Escrow API listening on", StringComparison.Ordinal));
        Assert.True(banner >= 0 && lines.Count - banner <= 25, $"banner at line {banner} of {lines.Count}:\n{string.Join('\n', lines)}");
        Assert.Empty(api.InfoLinesOf("Orleans", "Polly", "Microsoft"));
    }

    private static async Task<string> StatusAsync(HttpClient client, Guid escrowId) =>
        (await client.GetFromJsonAsync<JsonElement>($"/v1/escrows/{escrowId}")).GetProperty("status").GetString()!;
}
