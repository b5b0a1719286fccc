using Microsoft.Playwright;

namespace Escrow.Tests.Console;

/// <summary>
/// One server and one browser for every browser test: the whole service on Kestrel at 127.0.0.1 (a browser needs a
/// socket), driven by Debian's chromium through Playwright. Playwright cannot download its own browser here, so it
/// launches the installed one (ESCROW_CHROMIUM, else /usr/bin/chromium; `.ci/run` installs it).
/// </summary>
public sealed class ConsoleBrowserFixture : IAsyncLifetime
{
    public const string ChromiumDefault = "/usr/bin/chromium";

    public EscrowApiFactory App { get; private set; } = null!;

    public string BaseUrl { get; private set; } = "";

    public IBrowser Browser { get; private set; } = null!;

    private IPlaywright _playwright = null!;

    /// <summary>Where the screenshots go: ESCROW_SCREENSHOTS (`.ci/run` points it into the test results), else next to the tests.</summary>
    public static string ScreenshotDirectory =>
        Environment.GetEnvironmentVariable("ESCROW_SCREENSHOTS") is { Length: > 0 } dir ? dir : Path.Combine(AppContext.BaseDirectory, "screenshots");

    public async Task InitializeAsync()
    {
        var chromium = Environment.GetEnvironmentVariable("ESCROW_CHROMIUM") is { Length: > 0 } path ? path : ChromiumDefault;
        if (!File.Exists(chromium))
        {
            throw new InvalidOperationException($"Chromium was not found at {chromium}: install it (apt-get install -y chromium, as .ci/run does) or set ESCROW_CHROMIUM.");
        }
        var port = PostgresServer.GetFreePort();
        BaseUrl = $"http://127.0.0.1:{port}";
        App = new EscrowApiFactory(settings: new Dictionary<string, string?> { ["Api:PublicBaseUrl"] = BaseUrl }, kestrelPort: port);
        App.StartServer();
        _playwright = await Playwright.CreateAsync();
        // --no-sandbox: CI runs as root, where chromium refuses its own sandbox.
        Assertions.SetDefaultExpectTimeout(30_000);
        Browser = await _playwright.Chromium.LaunchAsync(new() { ExecutablePath = chromium, Headless = true, Args = ["--no-sandbox", "--disable-dev-shm-usage"] });
    }

    public async Task DisposeAsync()
    {
        await Browser.DisposeAsync();
        _playwright.Dispose();
        await App.DisposeAsync();
    }

    /// <summary>
    /// A new browser context. Its waits are generous: beside the whole suite on two cores a page can take longer than
    /// Playwright's default 30 s to answer, which is starvation, not what a test checks.
    /// </summary>
    public async Task<IBrowserContext> NewContextAsync(int width = 1280, int height = 900)
    {
        var context = await Browser.NewContextAsync(new() { BaseURL = BaseUrl, ViewportSize = new() { Width = width, Height = height } });
        context.SetDefaultTimeout(90_000);
        context.SetDefaultNavigationTimeout(90_000);
        return context;
    }

    /// <summary>A new browser context signed in to the console with the admin key, on the overview.</summary>
    public async Task<IPage> SignedInPageAsync(int width = 1280, int height = 900)
    {
        var context = await NewContextAsync(width, height);
        var page = await context.NewPageAsync();
        await page.GotoAsync("/console/signin");
        await page.GetByLabel("Admin key").FillAsync(EscrowApiFactory.AdminKey);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
        try
        {
            await page.WaitForURLAsync(BaseUrl + "/console");
        }
        catch (TimeoutException e)
        {
            throw new InvalidOperationException($"Signing in with the admin key did not reach /console: at {page.Url}, the page says: {await page.Locator("body").InnerTextAsync()}", e);
        }
        return page;
    }

    public static async Task ScreenshotAsync(IPage page, string name)
    {
        Directory.CreateDirectory(ScreenshotDirectory);
        await page.ScreenshotAsync(new() { Path = Path.Combine(ScreenshotDirectory, name + ".png"), FullPage = true });
    }

    /// <summary>A recipient with payouts enabled and one held escrow made through the API; returns (id, access token).</summary>
    public async Task<(Guid Id, string AccessToken)> HeldEscrowAsync(string? recipientId = null)
    {
        recipientId ??= "rcp-" + Guid.NewGuid().ToString("N")[..12];
        await App.PutRecipientAsync(recipientId);
        await App.EnablePayoutsAsync(recipientId);
        JsonElement created = await App.CreateHeldEscrowAsync(recipientId);
        return (created.GetProperty("id").GetGuid(), created.GetProperty("accessToken").GetString()!);
    }

    public T Service<T>() where T : notnull => App.Services.GetRequiredService<T>();
}

[CollectionDefinition(Name)]
public sealed class ConsoleBrowserCollection : ICollectionFixture<ConsoleBrowserFixture>
{
    public const string Name = "console-browser";
}
