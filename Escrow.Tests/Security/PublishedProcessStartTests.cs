using System.Diagnostics;

namespace Escrow.Tests.Security;

/// <summary>
/// Live-mode start refusals end to end: <c>dotnet publish</c> of Escrow.Api (once per run, from the build the tests use), started
/// as its own process with environment variables, as an operator would start it.
/// </summary>
public sealed class PublishedProcessStartTests(PublishedApi published) : IClassFixture<PublishedApi>
{
    private static readonly TimeSpan ExitWait = TimeSpan.FromSeconds(90);

    private static Dictionary<string, string> LiveEnvironment() =>
        LiveModeStartTests.SafeLive().ToDictionary(kv => kv.Key.Replace(":", "__", StringComparison.Ordinal), kv => kv.Value!);

    /// <summary>Runs the published API until it exits: refused with the start refusal's exit code, each line printed, never listening.</summary>
    private async Task RefusesToStartAsync(Dictionary<string, string> environment, params string[] expected)
    {
        var (exitCode, output) = await published.RunUntilExitAsync(environment, ExitWait);

        Assert.True(exitCode == StartRefusal.ExitCode, $"exit code {exitCode}:\n{output}");
        Assert.All(expected, line => Assert.Contains(line, output, StringComparison.Ordinal));
        Assert.DoesNotContain("Escrow API listening", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Published_api_with_a_real_looking_stripe_key_and_the_postmark_sandbox_refuses_to_start()
    {
        var env = LiveEnvironment();
        env.Remove("Postmark__ServerToken");

        await RefusesToStartAsync(env, "refuses to start in live mode", "- Postmark:ServerToken:");
    }

    [Fact]
    public async Task Published_api_in_live_mode_with_a_compose_default_secret_refuses_naming_the_setting()
    {
        var env = LiveEnvironment();
        env["Stripe__WebhookSecret"] = "whsec_compose_dev_only";
        env["Api__AdminKeys__0"] = "compose-dev-admin-key-0";

        await RefusesToStartAsync(env, "- Stripe:WebhookSecret: a public development value", "- Api:AdminKeys:0: a public development value");
    }

    [Fact]
    public async Task Published_api_with_no_configuration_starts_in_sandbox_mode_and_prints_what_it_generated()
    {
        // In memory: this run is killed, which would leave a local cluster's server behind (LocalRunTests covers that run).
        var output = await published.RunUntilOutputAsync(new Dictionary<string, string> { ["Escrow__Storage"] = "InMemory" }, "Storage ", TimeSpan.FromSeconds(120));

        Assert.Contains("Escrow API listening on http://127.0.0.1:", output, StringComparison.Ordinal);
        Assert.Contains("Stripe    SANDBOX", output, StringComparison.Ordinal);
        Assert.Contains("Postmark  SANDBOX", output, StringComparison.Ordinal);
        Assert.Contains("Platform API key (generated): dev-platform-", output, StringComparison.Ordinal);
        Assert.Contains("Admin API key (generated): dev-admin-", output, StringComparison.Ordinal);
        Assert.Contains("Postmark inbound webhook credentials (generated): postmark:", output, StringComparison.Ordinal);
    }
}

/// <summary>Escrow.Api published once into a temporary folder, and runs of it with a clean environment.</summary>
public sealed class PublishedApi : IAsyncLifetime
{
    /// <summary>Settings of the test process's own environment that must not reach the service under test.</summary>
    private static readonly string[] InheritedPrefixes = ["Stripe__", "Postmark__", "Api__", "ConnectionStrings__", "Silo__", "Escrow__", "Tokens__", "ASPNETCORE_", "DOTNET_URLS", "ESCROW_"];

    private readonly string _folder = Path.Combine(Path.GetTempPath(), "escrow-published-" + Guid.NewGuid().ToString("N"));

    public string Dll => Path.Combine(_folder, "Escrow.Api.dll");

    public async Task InitializeAsync()
    {
        var testBin = Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory);
        var configuration = new DirectoryInfo(testBin).Parent!.Name;
        var repo = new DirectoryInfo(testBin);
        while (repo is not null && !File.Exists(Path.Combine(repo.FullName, "Escrow.sln")))
        {
            repo = repo.Parent;
        }
        Assert.NotNull(repo);
        var project = Path.Combine(repo.FullName, "Escrow.Api", "Escrow.Api.csproj");
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in new[] { "publish", project, "--no-build", "-c", configuration, "-o", _folder, "-v", "q" })
        {
            info.ArgumentList.Add(argument);
        }
        using var publish = Process.Start(info)!;
        var stdout = publish.StandardOutput.ReadToEndAsync();
        var stderr = publish.StandardError.ReadToEndAsync();
        await publish.WaitForExitAsync();
        Assert.True(publish.ExitCode == 0, $"dotnet publish failed:\n{await stdout}\n{await stderr}");
        Assert.True(File.Exists(Dll), $"{Dll} was not published");
    }

    public Task DisposeAsync()
    {
        try
        {
            Directory.Delete(_folder, recursive: true);
        }
        catch (IOException)
        {
            // A temporary folder left behind costs nothing but disk.
        }
        return Task.CompletedTask;
    }

    /// <summary>Starts the service and waits for it to exit by itself; a run that outlives the wait is killed and fails.</summary>
    public async Task<(int ExitCode, string Output)> RunUntilExitAsync(Dictionary<string, string> environment, TimeSpan wait)
    {
        var (process, output) = Start(environment);
        using (process)
        {
            using var timeout = new CancellationTokenSource(wait);
            try
            {
                await process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                Assert.Fail($"Escrow.Api did not exit within {wait}:\n{Text(output)}");
            }
            // The asynchronous readers finish once both streams are closed.
            process.WaitForExit();
            return (process.ExitCode, Text(output));
        }
    }

    /// <summary>Starts the service, waits for a line containing <paramref name="marker"/>, then stops it.</summary>
    public async Task<string> RunUntilOutputAsync(Dictionary<string, string> environment, string marker, TimeSpan wait)
    {
        // Ports of its own: the defaults (5080, 11111, 30000) may be taken on a shared machine. Nothing else is set.
        var arguments = new[]
        {
            "--urls", $"http://127.0.0.1:{PostgresServer.GetFreePort()}",
            "--Silo:SiloPort", PostgresServer.GetFreePort().ToString(), "--Silo:GatewayPort", PostgresServer.GetFreePort().ToString(),
        };
        var (process, output) = Start(environment, arguments);
        using (process)
        {
            try
            {
                await Eventually.UntilAsync(() => Task.FromResult(Text(output).Contains(marker, StringComparison.Ordinal) || process.HasExited),
                    $"Escrow.Api printing '{marker}'", wait);
                Assert.False(process.HasExited, $"Escrow.Api exited with {(process.HasExited ? process.ExitCode : 0)}:\n{Text(output)}");
                return Text(output);
            }
            finally
            {
                if (!process.HasExited)
                {
                    process.Kill(entireProcessTree: true);
                    await process.WaitForExitAsync();
                }
            }
        }
    }

    private (Process Process, StringBuilder Output) Start(Dictionary<string, string> environment, IEnumerable<string>? arguments = null)
    {
        var workingDirectory = Directory.CreateTempSubdirectory("escrow-run-").FullName;
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory,
        };
        info.ArgumentList.Add(Dll);
        foreach (var argument in arguments ?? [])
        {
            info.ArgumentList.Add(argument);
        }
        foreach (var key in info.Environment.Keys.Where(k => InheritedPrefixes.Any(p => k.StartsWith(p, StringComparison.OrdinalIgnoreCase))).ToList())
        {
            info.Environment.Remove(key);
        }
        foreach (var (key, value) in environment)
        {
            info.Environment[key] = value;
        }
        var output = new StringBuilder();
        var process = new Process { StartInfo = info };
        void Append(string? line)
        {
            if (line is not null)
            {
                lock (output)
                {
                    output.AppendLine(line);
                }
            }
        }
        process.OutputDataReceived += (_, e) => Append(e.Data);
        process.ErrorDataReceived += (_, e) => Append(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return (process, output);
    }

    private static string Text(StringBuilder output)
    {
        lock (output)
        {
            return output.ToString();
        }
    }
}
