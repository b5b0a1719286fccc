namespace Escrow.Tests.Security;

/// <summary>
/// What the operators' surface shows to someone without the admin key: /metrics (escrow counts, the service's inner
/// workings) and the public API documents (no admin routes unless <c>Api:DocumentAdminRoutes</c> is true).
/// </summary>
public sealed class OperatorSurfaceSecurityTests(InMemoryApiFixture fixture) : IClassFixture<InMemoryApiFixture>
{
    private EscrowApiFactory App => fixture.Factory;

    private async Task<HttpResponseMessage> MetricsAsync(Action<HttpRequestHeaders> credentials)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, "/metrics");
        credentials(request.Headers);
        return await App.Anonymous().SendAsync(request);
    }

    [Fact]
    public async Task Scraping_metrics_anonymously_is_refused()
    {
        var response = await MetricsAsync(_ => { });

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.DoesNotContain("# TYPE", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Scraping_metrics_with_the_platform_key_is_refused()
    {
        var asBearer = await MetricsAsync(h => h.Authorization = new AuthenticationHeaderValue("Bearer", EscrowApiFactory.PlatformKey));
        var asApiKey = await MetricsAsync(h => h.Add("X-Api-Key", EscrowApiFactory.PlatformKey));
        var asPassword = await MetricsAsync(h => h.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes("ops:" + EscrowApiFactory.PlatformKey))));

        Assert.Equal(HttpStatusCode.Unauthorized, asBearer.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, asApiKey.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, asPassword.StatusCode);
        Assert.DoesNotContain("# TYPE", await asBearer.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Scraping_metrics_with_a_guessed_bearer_is_refused()
    {
        var response = await MetricsAsync(h => h.Authorization = new AuthenticationHeaderValue("Bearer", EscrowApiFactory.AdminKey + "x"));

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
    }

    [Fact]
    public async Task Prometheus_with_the_admin_key_as_bearer_scrapes_metrics()
    {
        var response = await MetricsAsync(h => h.Authorization = new AuthenticationHeaderValue("Bearer", EscrowApiFactory.AdminKey));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains("# TYPE", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Reading_the_public_api_documents_reveals_no_admin_route()
    {
        var response = await App.Anonymous().GetAsync("/openapi/v1.json");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var text = await response.Content.ReadAsStringAsync();
        var document = JsonDocument.Parse(text).RootElement;

        var paths = document.GetProperty("paths").EnumerateObject().Select(p => p.Name).ToList();
        Assert.Contains("/v1/escrows", paths);
        Assert.DoesNotContain(paths, p => p.StartsWith("/v1/admin", StringComparison.Ordinal));
        Assert.DoesNotContain(document.GetProperty("tags").EnumerateArray(), t => t.GetProperty("name").GetString() == "Admin");
        Assert.DoesNotContain("/v1/admin", text, StringComparison.Ordinal);
        // Hidden from the document, still there for an admin key.
        Assert.Equal(HttpStatusCode.OK, (await App.Admin().GetAsync("/v1/admin/escrows?status=held")).StatusCode);
    }
}

/// <summary>The operators' own copy of the API documents: <c>Api:DocumentAdminRoutes</c> set.</summary>
public sealed class AdminRoutesDocumentedSecurityTests(AdminRoutesDocumentedFixture fixture) : IClassFixture<AdminRoutesDocumentedFixture>
{
    [Fact]
    public async Task Documenting_admin_routes_is_an_explicit_choice()
    {
        var document = await fixture.Factory.Anonymous().GetFromJsonAsync<JsonElement>("/openapi/v1.json");

        var paths = document.GetProperty("paths").EnumerateObject().Select(p => p.Name).ToList();
        Assert.Contains("/v1/admin/escrows", paths);
        Assert.Contains(document.GetProperty("tags").EnumerateArray(), t => t.GetProperty("name").GetString() == "Admin");
    }
}
