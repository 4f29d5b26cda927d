package server

import (
	"net/http"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/service"
)

func (s *Server) listProjects(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	items, err := s.svc.ListProjects(r.Context(), p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, gatehouse.List[gatehouse.Project]{Items: items})
	return nil
}

func (s *Server) getProject(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	pr, err := s.svc.GetProject(r.Context(), p, r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, pr)
	return nil
}

func (s *Server) createProject(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	var req gatehouse.Project
	if err := decode(r, &req); err != nil {
		return err
	}
	pr, err := s.svc.CreateProject(r.Context(), p, req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, pr)
	return nil
}

func (s *Server) updateProject(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	var req gatehouse.Project
	if err := decode(r, &req); err != nil {
		return err
	}
	pr, err := s.svc.UpdateProject(r.Context(), p, r.PathValue("name"), req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, pr)
	return nil
}

func (s *Server) deleteProject(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	if err := s.svc.DeleteProject(r.Context(), p, r.PathValue("name")); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct{}{})
	return nil
}

func (s *Server) createRoleToken(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	var req gatehouse.TokenRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	nt, err := s.svc.CreateRoleToken(r.Context(), p, r.PathValue("name"), r.PathValue("role"), req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, nt)
	return nil
}

func (s *Server) listRoleTokens(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	items, err := s.svc.ListRoleTokens(r.Context(), p, r.PathValue("name"), r.PathValue("role"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, gatehouse.List[gatehouse.Token]{Items: items})
	return nil
}

func (s *Server) deleteRoleToken(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	if err := s.svc.DeleteRoleToken(r.Context(), p, r.PathValue("name"), r.PathValue("role"), r.PathValue("id")); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct{}{})
	return nil
}

func (s *Server) listApplications(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	items, err := s.svc.ListApplications(r.Context(), p, r.URL.Query().Get("project"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, gatehouse.List[gatehouse.Application]{Items: items})
	return nil
}

func (s *Server) getApplication(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	a, err := s.svc.GetApplication(r.Context(), p, r.PathValue("name"))
	if err != nil {
		return err
	}
	writeAnswer(w, http.StatusOK, applicationJSON(a))
	return nil
}

func (s *Server) createApplication(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	var req gatehouse.Application
	if err := decode(r, &req); err != nil {
		return err
	}
	a, err := s.svc.CreateApplication(r.Context(), p, req)
	if err != nil {
		return err
	}
	writeAnswer(w, http.StatusOK, applicationJSON(a))
	return nil
}

func (s *Server) updateApplication(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	var req gatehouse.Application
	if err := decode(r, &req); err != nil {
		return err
	}
	a, err := s.svc.UpdateApplication(r.Context(), p, r.PathValue("name"), req)
	if err != nil {
		return err
	}
	writeAnswer(w, http.StatusOK, applicationJSON(a))
	return nil
}

func (s *Server) deleteApplication(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	if err := s.svc.DeleteApplication(r.Context(), p, r.PathValue("name")); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct{}{})
	return nil
}

func (s *Server) syncApplication(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	var req gatehouse.SyncRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	op, err := s.svc.Sync(r.Context(), p, r.PathValue("name"), req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, op)
	return nil
}

func (s *Server) listOperations(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	items, err := s.svc.ListOperations(r.Context(), p, r.PathValue("name"), r.URL.Query().Get("state"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, gatehouse.List[gatehouse.Operation]{Items: items})
	return nil
}

func (s *Server) reportOperation(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	var req gatehouse.OperationReport
	if err := decode(r, &req); err != nil {
		return err
	}
	op, err := s.svc.ReportOperation(r.Context(), p, r.PathValue("name"), r.PathValue("id"), req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, op)
	return nil
}

func (s *Server) setStatus(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	var req gatehouse.StatusReport
	if err := decode(r, &req); err != nil {
		return err
	}
	a, err := s.svc.SetStatus(r.Context(), p, r.PathValue("name"), req)
	if err != nil {
		return err
	}
	writeAnswer(w, http.StatusOK, applicationJSON(a))
	return nil
}
