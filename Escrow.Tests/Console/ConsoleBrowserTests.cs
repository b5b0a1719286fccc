using Escrow.Api.OperatorConsole;
using Microsoft.Playwright;

namespace Escrow.Tests.Console;

/// <summary>The operator console in chromium: sign-in, the pages, and each action going through to the grains.</summary>
[Collection(ConsoleBrowserCollection.Name)]
public sealed class ConsoleBrowserTests(ConsoleBrowserFixture fx)
{
    [Fact]
    public async Task An_escrow_created_through_the_api_shows_on_the_overview_and_in_the_list()
    {
        var recipient = "rcp-list-" + Guid.NewGuid().ToString("N")[..8];
        var (id, _) = await fx.HeldEscrowAsync(recipient);
        var page = await fx.SignedInPageAsync();

        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Overview" })).ToBeVisibleAsync();
        await Assertions.Expect(page.Locator("table:has(caption:text('Escrows by status')) a", new() { HasTextString = "held" })).ToBeVisibleAsync();
        await ConsoleBrowserFixture.ScreenshotAsync(page, "console-overview");
        await Assertions.Expect(page.Locator("svg[role=img] rect.created").First).ToBeAttachedAsync();

        await page.GetByRole(AriaRole.Link, new() { Name = "Escrows", Exact = true }).ClickAsync();
        await page.GetByLabel("Recipient").FillAsync(recipient);
        await page.GetByRole(AriaRole.Button, new() { Name = "Filter" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Link, new() { Name = id.ToString() })).ToBeVisibleAsync();
        await ConsoleBrowserFixture.ScreenshotAsync(page, "console-escrows");

        await page.GetByRole(AriaRole.Link, new() { Name = id.ToString() }).ClickAsync();
        await Assertions.Expect(page.GetByTestId("status")).ToHaveTextAsync("held");
    }

    [Fact]
    public async Task An_operator_releases_a_held_escrow_from_its_page_after_confirming_and_sees_the_status_and_timeline_change()
    {
        var (id, _) = await fx.HeldEscrowAsync();
        var page = await fx.SignedInPageAsync();
        await page.GotoAsync($"/console/escrows/{id}");
        await Assertions.Expect(page.GetByTestId("status")).ToHaveTextAsync("held");
        await Assertions.Expect(page.GetByTestId("timeline")).Not.ToContainTextAsync("phone");
        // The actions the machine accepts for a held escrow, and only those.
        Assert.Equal(["release", "refund"], await page.Locator("button[data-action]").EvaluateAllAsync<string[]>("bs => bs.map(b => b.dataset.action)"));

        await page.Locator("#reason-release").FillAsync("The recipient answered by phone");
        await page.Locator("button[data-action=release]").ClickAsync();
        // The confirmation step: nothing has happened yet.
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Release to the recipient" })).ToBeVisibleAsync();
        Assert.Equal("held", (await fx.App.GetEscrowAsync(id)).GetProperty("status").GetString());
        await page.GetByRole(AriaRole.Button, new() { Name = "Confirm: Release to the recipient" }).ClickAsync();

        await Assertions.Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("Done: Release to the recipient");
        await fx.App.WaitForStatusAsync(id, "released");
        await page.ReloadAsync();
        await Assertions.Expect(page.GetByTestId("status")).ToHaveTextAsync("released");
        await Assertions.Expect(page.GetByTestId("timeline")).ToContainTextAsync("The recipient answered by phone");
        await Assertions.Expect(page.GetByTestId("timeline")).ToContainTextAsync("transferred");
        // Released, the machine still accepts one action: a refund, which takes the recipient's share back first.
        await Assertions.Expect(page.Locator("button[data-action]")).ToHaveCountAsync(1);
        await Assertions.Expect(page.Locator("button[data-action=refund]")).ToHaveCountAsync(1);
        await ConsoleBrowserFixture.ScreenshotAsync(page, "console-escrow");

        // The same audit row as the admin API writes, with the console's key id.
        var audit = await fx.Service<IEscrowStore>().GetAuditAsync(id, 10);
        var row = Assert.Single(audit);
        Assert.Equal(("escrow.release", "The recipient answered by phone", "accepted"), (row.Action, row.Reason, row.Details));
        Assert.Equal(Escrow.Api.Hosting.ApiKeyRegistry.KeyId(EscrowApiFactory.AdminKey), row.KeyId);
        await page.GetByRole(AriaRole.Link, new() { Name = "Audit log of this escrow" }).ClickAsync();
        await Assertions.Expect(page.Locator("table")).ToContainTextAsync("escrow.release");
        await ConsoleBrowserFixture.ScreenshotAsync(page, "console-audit");
    }

    [Fact]
    public async Task A_refund_with_a_blank_reason_is_refused_and_the_escrow_stays_held()
    {
        var (id, _) = await fx.HeldEscrowAsync();
        var page = await fx.SignedInPageAsync();
        await page.GotoAsync($"/console/escrows/{id}");

        // Spaces satisfy the browser's "required"; the server must still refuse.
        await page.Locator("#reason-refund").FillAsync("   ");
        var response = await page.RunAndWaitForResponseAsync(
            () => page.Locator("button[data-action=refund]").ClickAsync(), r => r.Url.EndsWith("/refund", StringComparison.Ordinal));

        Assert.Equal(400, response.Status);
        await Assertions.Expect(page.GetByRole(AriaRole.Alert)).ToContainTextAsync("A reason");
        await Assertions.Expect(page.GetByTestId("status")).ToHaveTextAsync("held");
        Assert.Equal("held", (await fx.App.GetEscrowAsync(id)).GetProperty("status").GetString());
        Assert.Empty(await fx.Service<IEscrowStore>().GetAuditAsync(id, 10));
    }

    [Fact]
    public async Task An_operator_acknowledges_an_alert()
    {
        var store = fx.Service<IEscrowStore>();
        var (alert, _) = await store.RaiseAlertAsync(new NewAlert("console_test", "warning", null, "console-test/" + Guid.NewGuid(), "An alert to acknowledge", fx.App.Clock.GetUtcNow()));
        var page = await fx.SignedInPageAsync();
        await page.GetByRole(AriaRole.Link, new() { Name = "Alerts" }).First.ClickAsync();

        var row = page.Locator($"tr[data-alert='{alert.Id}']");
        await Assertions.Expect(row).ToContainTextAsync("An alert to acknowledge");
        await ConsoleBrowserFixture.ScreenshotAsync(page, "console-alerts");
        await row.GetByRole(AriaRole.Button, new() { Name = "Acknowledge" }).ClickAsync();

        await Assertions.Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync($"Alert {alert.Id} acknowledged");
        await Assertions.Expect(page.Locator($"tr[data-alert='{alert.Id}']")).ToHaveCountAsync(0);
        var stored = (await store.ListAlertsAsync(openOnly: false, 1_000)).Single(a => a.Id == alert.Id);
        Assert.Equal(Escrow.Api.Hosting.ApiKeyRegistry.KeyId(EscrowApiFactory.AdminKey), stored.AcknowledgedBy);
    }

    [Fact]
    public async Task An_operator_resets_the_tripped_breaker_with_a_reason()
    {
        var breaker = fx.App.Grains.GetGrain<ICircuitBreakerGrain>(0);
        await breaker.ResetAsync("test-setup");
        var max = (await breaker.GetAsync()).RefundAmountPerWindowMaxMinor;
        Assert.Equal(RefundPermit.Granted, await breaker.RequestPermitAsync(Guid.NewGuid(), Money.Eur(max / 2 + 1)));
        Assert.Equal(RefundPermit.Denied, await breaker.RequestPermitAsync(Guid.NewGuid(), Money.Eur(max / 2 + 1)));
        var page = await fx.SignedInPageAsync();
        await Assertions.Expect(page.GetByTestId("breaker-state")).ToHaveTextAsync("open");
        await page.GetByRole(AriaRole.Link, new() { Name = "Circuit breaker" }).ClickAsync();
        await Assertions.Expect(page.GetByTestId("breaker-state")).ToHaveTextAsync("open");
        await ConsoleBrowserFixture.ScreenshotAsync(page, "console-breaker");

        await page.GetByLabel("Reason").FillAsync("Refund burst checked: a batch of expired escrows");
        await page.GetByRole(AriaRole.Button, new() { Name = "Reset the breaker…" }).ClickAsync();
        Assert.Equal("open", (await breaker.GetAsync()).State);
        await page.GetByRole(AriaRole.Button, new() { Name = "Confirm: Reset the circuit breaker" }).ClickAsync();

        await Assertions.Expect(page.GetByTestId("breaker-state")).ToHaveTextAsync("closed");
        Assert.Equal("closed", (await breaker.GetAsync()).State);
        var audit = await fx.Service<IEscrowStore>().GetAuditAsync(null, 50);
        Assert.Contains(audit, a => a.Action == "circuit_breaker.reset" && a.Reason == "Refund burst checked: a batch of expired escrows");
    }

    [Fact]
    public async Task A_console_post_without_the_antiforgery_token_is_refused_with_400_and_changes_nothing()
    {
        var store = fx.Service<IEscrowStore>();
        var (alert, _) = await store.RaiseAlertAsync(new NewAlert("console_test", "warning", null, "console-test/" + Guid.NewGuid(), "Not to be acknowledged", fx.App.Clock.GetUtcNow()));
        var (id, _) = await fx.HeldEscrowAsync();
        var page = await fx.SignedInPageAsync();

        // Signed in (the cookie goes with these requests) but without the form's token: what a forged form sends.
        var request = page.Context.APIRequest;
        var release = await request.PostAsync($"/console/escrows/{id}/release", new() { Form = FormOf(request, ("reason", "forged"), ("confirm", "yes")), MaxRedirects = 0 });
        var ack = await request.PostAsync($"/console/alerts/{alert.Id}/ack", new() { Form = FormOf(request, ("confirm", "yes")), MaxRedirects = 0 });
        var wrongToken = await request.PostAsync($"/console/escrows/{id}/release", new() { Form = FormOf(request, ("reason", "forged"), ("confirm", "yes"), ("__af", "not-a-token")), MaxRedirects = 0 });

        Assert.Equal([400, 400, 400], new[] { release.Status, ack.Status, wrongToken.Status });
        Assert.Equal("held", (await fx.App.GetEscrowAsync(id)).GetProperty("status").GetString());
        Assert.Null((await store.ListAlertsAsync(openOnly: false, 1_000)).Single(a => a.Id == alert.Id).AcknowledgedAt);
        Assert.Empty(await store.GetAuditAsync(id, 10));
    }

    [Fact]
    public async Task Nothing_of_the_console_is_reachable_without_the_cookie()
    {
        var (id, _) = await fx.HeldEscrowAsync();
        var context = await fx.NewContextAsync();
        var page = await context.NewPageAsync();
        foreach (var path in new[] { "/console", "/console/escrows", $"/console/escrows/{id}", "/console/alerts", "/console/breaker", "/console/reconciliation", "/console/audit" })
        {
            await page.GotoAsync(path);
            Assert.StartsWith(fx.BaseUrl + "/console/signin", page.Url, StringComparison.Ordinal);
            // Nothing of the escrow (the sign-in form keeps only the address asked for, to return to it).
            Assert.DoesNotContain("bob@example.com", await page.ContentAsync(), StringComparison.Ordinal);
            Assert.DoesNotContain("15.00", await page.ContentAsync(), StringComparison.Ordinal);
        }
        var request = context.APIRequest;
        var post = await request.PostAsync($"/console/escrows/{id}/release", new() { Form = FormOf(request, ("reason", "x"), ("confirm", "yes")), MaxRedirects = 0 });
        Assert.NotEqual(200, post.Status);
        Assert.Equal("held", (await fx.App.GetEscrowAsync(id)).GetProperty("status").GetString());
        await ConsoleBrowserFixture.ScreenshotAsync(page, "console-signin");
    }

    [Fact]
    public async Task A_wrong_key_does_not_sign_in_and_repeated_wrong_keys_pause_the_address()
    {
        // A successful sign-in first clears this address's failures left by other tests.
        await fx.SignedInPageAsync();
        var context = await fx.NewContextAsync();
        var page = await context.NewPageAsync();
        await page.GotoAsync("/console/signin");

        for (var i = 0; i < SignInThrottle.FailuresBeforePause; i++)
        {
            await page.GetByLabel("Admin key").FillAsync(EscrowApiFactory.PlatformKey);
            await page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
            await Assertions.Expect(page.GetByRole(AriaRole.Alert)).ToHaveTextAsync("That is not an admin key.");
        }
        Assert.DoesNotContain(await context.CookiesAsync(), c => c.Name == "escrow_console");

        // Paused: even the right key is refused until the pause has passed.
        await page.GetByLabel("Admin key").FillAsync(EscrowApiFactory.AdminKey);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Alert)).ToContainTextAsync("Too many wrong keys");
        Assert.DoesNotContain(await context.CookiesAsync(), c => c.Name == "escrow_console");

        fx.App.Clock.Advance(SignInThrottle.Pause);
        await page.GetByLabel("Admin key").FillAsync(EscrowApiFactory.AdminKey);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
        await page.WaitForURLAsync(fx.BaseUrl + "/console");
        var cookie = Assert.Single(await context.CookiesAsync(), c => c.Name == "escrow_console");
        Assert.True(cookie.HttpOnly);
        Assert.Equal(SameSiteAttribute.Strict, cookie.SameSite);
        Assert.DoesNotContain(EscrowApiFactory.AdminKey, cookie.Value, StringComparison.Ordinal);

        await page.GetByRole(AriaRole.Button, new() { Name = "Sign out" }).ClickAsync();
        await page.WaitForURLAsync(fx.BaseUrl + "/console/signin");
        await page.GotoAsync("/console");
        Assert.StartsWith(fx.BaseUrl + "/console/signin", page.Url, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_operator_runs_a_reconciliation_and_reads_its_report()
    {
        var page = await fx.SignedInPageAsync();
        await page.GetByRole(AriaRole.Link, new() { Name = "Reconciliation" }).ClickAsync();
        var day = DateOnly.FromDateTime(fx.App.Clock.GetUtcNow().UtcDateTime).ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture);
        await page.Locator("form[method=post] input[name=date]").FillAsync(day);
        await page.GetByRole(AriaRole.Button, new() { Name = "Run reconciliation" }).ClickAsync();

        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Name = $"Report of {day}" })).ToBeVisibleAsync();
        await Assertions.Expect(page.Locator("main")).ToContainTextAsync("escrows and");
        Assert.NotNull(await fx.Service<IEscrowStore>().GetReconciliationReportAsync(DateOnly.Parse(day, System.Globalization.CultureInfo.InvariantCulture)));
        await ConsoleBrowserFixture.ScreenshotAsync(page, "console-reconciliation");
    }

    [Fact]
    public async Task Every_console_page_fits_a_phone_screen_without_sideways_scrolling()
    {
        var (id, _) = await fx.HeldEscrowAsync();
        var page = await fx.SignedInPageAsync(width: 390, height: 844);
        foreach (var path in new[] { "/console", "/console/escrows", $"/console/escrows/{id}", "/console/alerts?show=all", "/console/breaker", "/console/reconciliation", "/console/audit" })
        {
            await page.GotoAsync(path);
            var overflow = await page.EvaluateAsync<int>("() => document.documentElement.scrollWidth - window.innerWidth");
            Assert.True(overflow <= 0, $"{path} is {overflow} px wider than a 390 px screen");
        }
        await page.GotoAsync($"/console/escrows/{id}");
        await ConsoleBrowserFixture.ScreenshotAsync(page, "console-escrow-phone");
    }

    private static IFormData FormOf(IAPIRequestContext request, params (string Name, string Value)[] fields)
    {
        var form = request.CreateFormData();
        foreach (var (name, value) in fields)
        {
            form.Set(name, value);
        }
        return form;
    }
}
