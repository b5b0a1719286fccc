using System.Diagnostics;
using System.Text.RegularExpressions;

namespace Escrow.Tests.Hosting;

/// <summary>
/// Escrow.Api as a separate process, started the way a person starts it, with its console output kept for the test.
/// Only the listen address and the silo's ports are set (so runs beside other tests do not collide); everything
/// else is the service's own default.
/// </summary>
public sealed partial class ApiProcess : IAsyncDisposable
{
    public const string BannerEnd = "Press Ctrl+C to stop.";

    private readonly Process _process;
    private readonly List<string> _lines = [];

    private ApiProcess(Process process, string address)
    {
        _process = process;
        Address = address;
    }

    public string Address { get; }

    /// <summary>The output up to the moment the banner was seen.</summary>
    public IReadOnlyList<string> StartupLines { get; private set; } = [];

    public IReadOnlyList<string> Lines
    {
        get
        {
            lock (_lines)
            {
                return [.. _lines];
            }
        }
    }

    /// <summary>The configuration the tests were built in (Debug or Release): bin/{configuration}/net10.0/.</summary>
    public static string BuildConfiguration => Path.GetFileName(Path.GetDirectoryName(Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory)))!;

    /// <summary>The repository's root (the directory holding Escrow.sln).</summary>
    public static string RepositoryRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Escrow.sln")))
        {
            dir = dir.Parent;
        }
        return dir?.FullName ?? throw new InvalidOperationException("Escrow.sln not found above " + AppContext.BaseDirectory);
    }

    /// <summary>Starts <c>dotnet {arguments}</c> in <paramref name="workingDirectory"/> and waits for the start-up banner.</summary>
    public static async Task<ApiProcess> StartAsync(IEnumerable<string> arguments, string workingDirectory, IDictionary<string, string>? environment = null)
    {
        var port = PostgresServer.GetFreePort();
        var info = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }
        foreach (var inherited in new[] { "ASPNETCORE_ENVIRONMENT", "DOTNET_ENVIRONMENT", "ConnectionStrings__Escrow", "ASPNETCORE_URLS", "DOTNET_URLS" })
        {
            info.Environment.Remove(inherited);
        }
        info.Environment["ASPNETCORE_URLS"] = $"http://127.0.0.1:{port}";
        info.Environment["Silo__SiloPort"] = PostgresServer.GetFreePort().ToString(System.Globalization.CultureInfo.InvariantCulture);
        info.Environment["Silo__GatewayPort"] = PostgresServer.GetFreePort().ToString(System.Globalization.CultureInfo.InvariantCulture);
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[key] = value;
        }
        var process = Process.Start(info)!;
        var api = new ApiProcess(process, $"http://127.0.0.1:{port}");
        process.OutputDataReceived += (_, e) => api.Add(e.Data);
        process.ErrorDataReceived += (_, e) => api.Add(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        await Eventually.UntilAsync(() => Task.FromResult(api.Lines.Contains(BannerEnd) || process.HasExited),
            "the API's start-up banner", TimeSpan.FromMinutes(3));
        if (process.HasExited)
        {
            throw new InvalidOperationException($"The API exited ({process.ExitCode}) before its banner:\n{string.Join('\n', api.Lines)}");
        }
        api.StartupLines = api.Lines;
        return api;
    }

    /// <summary>Ends the process and its children at once (for runs with nothing to keep).</summary>
    public async Task KillAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
        }
        await _process.WaitForExitAsync();
    }

    private void Add(string? line)
    {
        if (line is not null)
        {
            lock (_lines)
            {
                _lines.Add(line);
            }
        }
    }

    /// <summary>A key printed in the banner, e.g. "Platform API key".</summary>
    public string BannerValue(string label)
    {
        var line = Lines.Last(l => l.TrimStart().StartsWith(label, StringComparison.Ordinal));
        return line[(line.LastIndexOf(": ", StringComparison.Ordinal) + 2)..].Trim();
    }

    public HttpClient Client(string? apiKey = null)
    {
        var client = new HttpClient { BaseAddress = new Uri(Address), Timeout = TimeSpan.FromSeconds(60) };
        if (apiKey is not null)
        {
            client.DefaultRequestHeaders.Add("X-Api-Key", apiKey);
        }
        client.DefaultRequestHeaders.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
        return client;
    }

    /// <summary>Stops the process as Ctrl+C or <c>docker stop</c> would (SIGTERM) and waits for it to exit.</summary>
    public async Task StopAsync()
    {
        if (_process.HasExited)
        {
            return;
        }
        using (var kill = Process.Start("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync();
        }
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        await _process.WaitForExitAsync(timeout.Token);
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await StopAsync();
        }
        catch (OperationCanceledException)
        {
            _process.Kill(entireProcessTree: true);
        }
        _process.Dispose();
    }

    /// <summary>A log line written by a logger of one of these categories at information level (the console logger's "info: Category[id]").</summary>
    public IReadOnlyList<string> InfoLinesOf(params string[] categoryPrefixes) =>
        [.. Lines.Where(l => InfoLine().Match(l) is { Success: true } m && categoryPrefixes.Any(p => m.Groups[1].Value.StartsWith(p, StringComparison.Ordinal)))];

    [GeneratedRegex(@"^info: ([A-Za-z0-9_.]+)\[")]
    private static partial Regex InfoLine();
}
